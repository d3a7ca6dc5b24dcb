#!/usr/bin/env bash
# The prepared GPU check (issue 21): one command, no network, under 9 minutes, every part under its own time limit.
#
#   OUT=/path/to/records bash benchmarks/gpu_check.sh
#
# Needs: a python with PyTorch (CUDA build), Lightning, safetensors, hypothesis and pytest (PYTHON, default python3);
# gon runs from this checkout's src/ (not installed). Fashion-MNIST's four raw .gz files in .data/fashion-mnist/ of
# the checkout (ignored by git; copy them from /usr/share/datasets/fashion-mnist/ or any download).
# Parts, in order, each under `timeout` (the seconds below; the sweep gets what is left of the total):
#   1. the CUDA tests            tests/test_cuda.py and the CUDA tests of tests/test_graphs.py, tests/test_ensemble.py
#                                 and tests/test_bench.py                 -> $OUT/tests.log, $OUT/tests.xml
#   2. graphed vs eager steps     gon bench --sections cuda-graphs         -> $OUT/bench-graphs.{json,md}
#   3. stacked vs separate steps  gon bench --sections ensemble (M 1,3,5)  -> $OUT/bench-ensemble.{json,md}
#   4. the Table 1 GON / AE sweep at the paper preset (full Fashion-MNIST, latent 256, lr 1e-4, 3 seeds), for as
#      many epochs as the step times of part 3 say fit in the time left (at most 7 minutes)   -> $OUT/table1/
# and $OUT/gpu_check.json: the machine, each part's command, exit status and seconds, the sweep's chosen epochs.
#
# GPU_CHECK_CPU=1 runs every part on the CPU at small sizes, each under 3 times its limit (a rehearsal on a machine
# without a GPU: the CUDA tests skip and tests/test_ensemble.py's CPU tests run, the graphs section reports "skipped:
# no CUDA device", the ensemble section measures M = 1, 2 at batch 8, the sweep trains on 512 images, 2 epochs at most).
set -uo pipefail
{ # one block: bash reads all of it before running it (a script edited meanwhile cannot derail it)
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/gpu-check}
PY=${PYTHON:-python3}
CPU=${GPU_CHECK_CPU:-0}
SCALE=1; [ "$CPU" = 1 ] && SCALE=3     # the rehearsal: a slow CPU gets 3 times each part's limit
TOTAL=${GPU_CHECK_SECONDS:-$((530 * SCALE))}  # the whole check, seconds (under 9 minutes on a GPU)
SWEEP_MAX=420                          # the sweep: at most 7 minutes
mkdir -p "$OUT"
GON=("$PY" -c 'import sys; from gon.cli import main; sys.exit(main())')  # the gon command, from src/
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
start=$(date +%s)
deadline=$((start + TOTAL))
left() { echo $((deadline - $(date +%s))); }
parts=()

# run NAME SECONDS CMD...: the command under timeout (TERM, then KILL 15 s later), its status and time recorded
run() {
  local name=$1 limit=$2; shift 2
  local t0=$(date +%s)
  echo "== $name (limit ${limit}s): $*" | tee -a "$OUT/gpu_check.log"
  timeout --signal=TERM --kill-after=15 "$limit" "$@" 2>&1 | tee -a "$OUT/$name.log"
  local rc=${PIPESTATUS[0]}
  local took=$(( $(date +%s) - t0 ))
  echo "== $name: exit $rc after ${took}s" | tee -a "$OUT/gpu_check.log"
  parts+=("{\"part\": \"$name\", \"limit_s\": $limit, \"seconds\": $took, \"exit\": $rc, \"command\": $("$PY" -c 'import json, shlex, sys; print(json.dumps(shlex.join(sys.argv[1:])))' "$@")}")
}

if [ "$CPU" = 1 ]; then
  device=cpu
  bench_small=(--threads 1 --batch-size 8 --repeats 1)
  ensemble_repeats=1
  members=1,2
  sweep_size=(--limit-train 512 --test-size 256)
  train_images=512
  test_images=256
  max_epochs=2
else
  device=cuda
  bench_small=(--repeats 5)
  ensemble_repeats=3  # 13 models x M = 1, 3, 5 x eager and graphed within the part's limit
  members=1,3,5
  sweep_size=()
  train_images=60000
  test_images=10000
  max_epochs=500  # the paper's budget
fi
"$PY" - "$device" > "$OUT/machine.json" <<'EOF'
import json, sys, torch
from gon.bench.measure import machine
device = sys.argv[1]
if device == "cuda" and not torch.cuda.is_available():
    sys.exit("gpu_check: no CUDA device visible to torch (GPU_CHECK_CPU=1 rehearses on the CPU)")
print(json.dumps({"device": device, **machine(), "cuda": torch.version.cuda}, indent=2))
EOF
[ $? = 0 ] || { cat "$OUT/machine.json"; exit 2; }
command -v nvidia-smi > /dev/null && nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1

# 1. the CUDA tests
cuda_tests=(
  tests/test_cuda.py
  tests/test_graphs.py::test_graphed_step_matches_the_eager_step_on_cuda
  tests/test_graphs.py::test_gon_fit_with_cuda_graphs_logs_checkpoints_and_resumes
  tests/test_ensemble.py::test_stacked_seeds_train_as_their_separate_runs_on_cuda
  tests/test_bench.py::test_every_model_is_captured_on_cuda
)
[ "$CPU" = 1 ] && cuda_tests+=(tests/test_ensemble.py)  # the rehearsal: the CUDA tests skip; the CPU ones run
run tests $((100 * SCALE)) "$PY" -m pytest -q -p no:cacheprovider --junitxml="$OUT/tests.xml" "${cuda_tests[@]}"

# 2. graphed vs eager steps of every model (batch 64 and 512)
run bench-graphs $((50 * SCALE)) "${GON[@]}" bench --sections cuda-graphs --device "$device" "${bench_small[@]}" \
  --json "$OUT/bench-graphs.json"

# 3. stacked vs separate steps of every model, M = 1, 3, 5, eager and graphed
run bench-ensemble $((170 * SCALE)) "${GON[@]}" bench --sections ensemble --members "$members" --device "$device" \
  "${bench_small[@]}" --repeats "$ensemble_repeats" --json "$OUT/bench-ensemble.json"

# 4. the longest Table 1 GON / AE sweep that fits: epochs from part 3's step times of GON and AE at M = 3
sweep_limit=$(( $(left) - 25 ))  # the sweep may overrun by the 15 s of --kill-after: the total still holds
[ "$sweep_limit" -gt "$SWEEP_MAX" ] && sweep_limit=$SWEEP_MAX
help=$("${GON[@]}" reproduce --help)
flags=(); stacked=0
grep -q -- "--rows" <<< "$help" && flags+=(--rows "GON,AE")
grep -q -- "--ensemble" <<< "$help" && { flags+=(--ensemble on); stacked=1; }
epochs=$("$PY" - "$OUT/bench-ensemble.json" "$sweep_limit" "$train_images" "$stacked" "$max_epochs" "$test_images" <<'EOF'
import json, sys
path, limit, images, stacked, most = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1", int(sys.argv[5])
tests = int(sys.argv[6])
FIXED_S = 60  # data loading, the 10,000-image test evaluations of 6 units, pictures, start-up
try:
    rows = [r for r in json.load(open(path))["results"]["ensemble"] if "separate_ms" in r]
except (OSError, KeyError, ValueError):  # the section ran out of time: its log has the rows it measured
    import re
    line = re.compile(r"^\s+(.+?) M=(\d+) (eager|graphed): separate ([\d.]+) ms, stacked ([\d.]+) ms", re.M)
    try:
        log = open(path.replace(".json", ".log")).read()
    except OSError:
        log = ""
    rows = [
        {"name": n, "members": int(m), "separate_ms": float(a), "stacked_ms": float(b)} for n, m, _, a, b in line.findall(log)
    ]
seconds_per_step = 0.0  # of all 3 seeds of GON and of AE: the fastest mode, at the largest M <= 3 measured
for name in ("GON (Table 1)", "AE (Table 1)"):
    own = [r for r in rows if r["name"] == name and r["members"] <= 3]
    if not own:
        print(1)  # no step times: one epoch
        sys.exit()
    m = max(r["members"] for r in own)
    seconds_per_step += min(r["stacked_ms" if stacked else "separate_ms"] for r in own if r["members"] == m) * 3 / m / 1000
# the paper preset's curves evaluate all 10,000 test images every epoch: as half-cost steps of 64 images
per_epoch = (images // 64 + 0.5 * tests / 64) * seconds_per_step * 1.15  # 15% for the loop and checkpoints
print(max(1, min(most, int((limit - FIXED_S) / per_epoch))))
EOF
)
echo "sweep: $epochs epochs in at most ${sweep_limit}s (stacked seeds: $stacked; flags: ${flags[*]:-none})" | tee -a "$OUT/gpu_check.log"
run table1 "$sweep_limit" "${GON[@]}" reproduce table1 --preset paper --device "$device" --data-dir "$ROOT/.data" \
  --epochs "$epochs" "${sweep_size[@]}" "${flags[@]}" --no-progress --out "$OUT/table1" --overwrite

"$PY" - "$OUT" "$epochs" "$(( $(date +%s) - start ))" "${parts[@]}" <<'EOF'
import json, sys
out, epochs, seconds, parts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), [json.loads(p) for p in sys.argv[4:]]
record = {"machine": json.load(open(f"{out}/machine.json")), "seconds": seconds, "sweep_epochs": epochs, "parts": parts}
json.dump(record, open(f"{out}/gpu_check.json", "w"), indent=2)
print(f"gpu_check: {seconds} s in all; " + ", ".join(f"{p['part']} exit {p['exit']} ({p['seconds']} s)" for p in parts))
EOF
exit
}
