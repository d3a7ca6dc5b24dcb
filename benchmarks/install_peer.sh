#!/usr/bin/env bash
# Install the peer implementation gon bench compares against (gon-pytorch 0.1.1) into gon's cache,
# without its dependencies, so it can never replace the environment's torch: bash benchmarks/install_peer.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
target=$("$PYTHON" -c "from gon.bench.peer import peer_dir; print(peer_dir())")
requirement=$("$PYTHON" -c "from gon.bench.peer import PEER_REQUIREMENT; print(PEER_REQUIREMENT)")
if [ -d "$target/gon_pytorch" ]; then
  echo "$requirement already installed in $target"
else
  echo "==> pip install --no-deps --target $target $requirement"
  "$PYTHON" -m pip install --quiet --no-deps --disable-pip-version-check --target "$target" "$requirement"
fi
