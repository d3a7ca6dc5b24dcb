#!/usr/bin/env bash
# gon's speed benchmarks: bash benchmarks/speed.sh [quick|full|quality|contention] [extra gon bench flags]
#   quick    ~1 min on 2 CPU cores: the whole suite at small budgets (a smoke run)
#   full     ~9.5 min (default): throughput, memory, peer, data loading, fit overhead, time-to-quality
#   quality  ~45 min: the Monte Carlo sweep, implicit GON test MSE after 300 s per configuration
#   contention ~3 min: conv GON steps/s at 1 thread, one per core and the measured choice, beside a busy process
# Writes benchmarks/results/<mode>-<device>.json and .md; run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash benchmarks/install_peer.sh  # the gon-pytorch peer of the throughput table
mode=${1:-full}; shift || true
device=$(.venv/bin/python -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
case "$mode" in
  quick) flags=(--quick) ;;
  full) flags=() ;;
  quality) flags=(--quality --seconds 300) ;;
  contention) flags=(--contention) ;;
  *) echo "usage: bash benchmarks/speed.sh [quick|full|quality|contention] [gon bench flags]" >&2; exit 2 ;;
esac
mkdir -p benchmarks/results
out="benchmarks/results/$mode-$device"
.venv/bin/gon bench "${flags[@]}" "$@" --json "$out.json" | tee "$out.md"
echo "written: $out.json and $out.md"
