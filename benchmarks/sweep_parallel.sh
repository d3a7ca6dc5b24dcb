#!/usr/bin/env bash
# The Monte Carlo sweep (gon bench --quality) with its 7 shared-origin configurations run at once,
# each process pinned to 2 cores of its own: the same 2-core budget and background for all, in the
# time of one. Needs 14 cores.  Usage: bash benchmarks/sweep_parallel.sh [SECONDS=300] [OUT=benchmarks/results/sweep]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-300}; out=${2:-benchmarks/results/sweep}
gon=$( [ -x .venv/bin/gon ] && echo .venv/bin/gon || command -v gon ) || { echo "gon is not installed: bash scripts/setup.sh" >&2; exit 2; }
configs=("--fractions 1" "--fractions 0.5 --samplings same" "--fractions 0.25 --samplings same"
         "--fractions 0.1 --samplings same" "--fractions 0.5 --samplings independent"
         "--fractions 0.25 --samplings independent" "--fractions 0.1 --samplings independent")
cores=$(nproc)
if (( cores < 2 * ${#configs[@]} )); then
  echo "this sweep pins ${#configs[@]} processes to 2 cores each and needs $((2 * ${#configs[@]})) cores; this machine has $cores (use gon bench --quality)" >&2
  exit 2
fi
mkdir -p "$out"
lscpu | grep -E "Model name|^CPU\(s\)" || true
for i in "${!configs[@]}"; do
  # shellcheck disable=SC2086  # each config is several flags
  CUDA_VISIBLE_DEVICES= taskset -c $((2 * i)),$((2 * i + 1)) "$gon" bench --quality --no-naive --device cpu --threads 2 \
    --seconds "$seconds" ${configs[$i]} --json "$out/$i.json" > "$out/$i.md" 2> "$out/$i.log" &
done
wait
python=$(dirname "$gon")/python; [ -x "$python" ] || python=python3
"$python" - "$out" <<'PY'
import glob, json, sys
from gon.bench import markdown
out = sys.argv[1]
records = [json.load(open(f)) for f in sorted(glob.glob(f"{out}/[0-9]*.json"))]
merged = {**records[0], "results": {"monte-carlo": [r for rec in records for r in rec["results"]["monte-carlo"]]},
          "note": f"{len(records)} gon bench --quality processes at once, each pinned to 2 cores, --threads 2"}
json.dump(merged, open(f"{out}/sweep.json", "w"), indent=1)
print(markdown(merged))
print(f"written: {out}/sweep.json")
PY
