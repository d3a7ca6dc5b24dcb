#!/usr/bin/env bash
# Set up (virtualenv, test tools, Fashion-MNIST, Chromium), lint, and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
.venv/bin/ruff check src tests benchmarks scripts
.venv/bin/ruff format --check src tests benchmarks scripts
exec .venv/bin/python -m pytest -q "$@"
