#!/usr/bin/env bash
# Set up (virtualenv, test tools, Fashion-MNIST, Chromium), lint, and run the whole test suite. With no arguments (as CI
# runs it) it also builds the documentation site (warnings are errors) and checks the wheel on its own; with pytest
# arguments (bash scripts/test.sh tests/test_x.py -k y) it runs just those tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
.venv/bin/ruff check src tests benchmarks scripts
.venv/bin/ruff format --check src tests benchmarks scripts
if [ $# -eq 0 ]; then
  SECONDS=0
  bash scripts/docs.sh
  echo "==> the documentation site built with no warnings ($SECONDS s)"
  bash scripts/check_wheel.sh
fi
exec .venv/bin/python -m pytest -q "$@"
