#!/usr/bin/env bash
# Set up gon on a fresh Debian machine: a virtualenv in .venv with gon installed (editable),
# and Fashion-MNIST from Debian's package. Idempotent: fast when everything is already there.
# Usage: bash scripts/setup.sh [test]   ("test" adds the test tools, gon explore's Gradio, the Hub client, the
#                                        notebook kernel, the docs builder and the browser for the report and
#                                        explore tests)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
extras=""; [ "${1:-}" = "test" ] && extras="[test,signals,explore,tensorboard,hub,notebooks,docs]"
stamp=".venv/.gon-installed$extras"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ scripts/constraints.txt -nt "$stamp" ]; then
  echo "==> installing gon$extras and its dependencies (torch==2.13.0, CPU build)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -c scripts/constraints.txt -e ".$extras"
  touch "$stamp"
fi

apt_packages=()
[ -d /usr/share/datasets/fashion-mnist ] || apt_packages+=(dataset-fashion-mnist)
if [ "${1:-}" = "test" ] && ! command -v chromium >/dev/null; then apt_packages+=(chromium); fi
# the spoken-digit generator's test speaks with it (scripts/make_spoken_digits.py)
if [ "${1:-}" = "test" ] && ! command -v espeak-ng >/dev/null; then apt_packages+=(espeak-ng); fi
if [ ${#apt_packages[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "==> apt-get install ${apt_packages[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_packages[@]}" >/dev/null
  else
    echo "==> please install with root rights: sudo apt-get install ${apt_packages[*]}" >&2
  fi
fi
