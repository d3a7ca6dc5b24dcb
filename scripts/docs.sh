#!/usr/bin/env bash
# The documentation site (mkdocs-material + mkdocstrings): docs/*.md and the API reference from the docstrings.
# Usage: bash scripts/docs.sh          build into site/, every warning an error (what CI runs)
#        bash scripts/docs.sh serve    build, serve on http://127.0.0.1:8000 and rebuild on every change
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}  # the environment scripts/setup.sh test makes (it installs the docs extra)
[ -x "$PYTHON" ] || bash scripts/setup.sh test
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" NO_MKDOCS_2_WARNING=1
case "${1:-build}" in
  build) exec "$PYTHON" -m mkdocs build --strict --quiet ;;
  serve) exec "$PYTHON" -m mkdocs serve --strict --dev-addr 127.0.0.1:8000 ;;
  *) echo "usage: bash scripts/docs.sh [build|serve]" >&2; exit 2 ;;
esac
