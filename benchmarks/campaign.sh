#!/usr/bin/env bash
# The CPU campaign of issue 21: Table 1 (and Table 2) at the paper preset on full Fashion-MNIST, grown in stages
# (--resume --epochs E) so that every unit reaches E epochs before any goes further and the tables at each stage
# are kept. Resumable: run it again (after a stop, a reboot, in the next session) and it continues where it was.
#
#   nice -n 19 bash benchmarks/campaign.sh [ROOT]        (ROOT default results/campaign)
#
# Environment: GON (the gon command, default gon), JOBS (default 2), STAGES_T1, STAGES_T2 (epochs), ROWS_T1.
set -uo pipefail
ROOT=${1:-results/campaign}
GON=${GON:-gon}
JOBS=${JOBS:-2}
STAGES_T1=${STAGES_T1:-"1 2 3 5 10 15 20 30 40 50"}
STAGES_T2=${STAGES_T2:-"1 2 5 10"}
ROWS_T1=${ROWS_T1:-"GON,AE"}
mkdir -p "$ROOT"
log() { echo "$(date -u +%FT%TZ) $*" | tee -a "$ROOT/campaign.log"; }

stage() {  # EXPERIMENT OUT EPOCHS ROWS
  local exp=$1 out=$2 epochs=$3 rows=$4 resume=()
  [ -f "$out/settings.json" ] && resume=(--resume)
  log "start $exp --epochs $epochs --rows $rows ${resume[*]}"
  local t0=$SECONDS
  "$GON" reproduce "$exp" --rows "$rows" --epochs "$epochs" --seeds 3 --jobs "$JOBS" --threads 1 \
    --curve-images 0 --no-progress --out "$out" "${resume[@]}" || { log "stopped $exp at $epochs (rc $?)"; exit 1; }
  log "done $exp --epochs $epochs in $((SECONDS - t0)) s"
  mkdir -p "$out/stages/$epochs"
  cp "$out/$exp.md" "$out/$exp.csv" "$out/${exp}_curves.csv" "$out/stages/$epochs/" 2>/dev/null || true
}

for e in $STAGES_T1; do stage table1 "$ROOT/table1-fashion" "$e" "$ROWS_T1"; done
for e in $STAGES_T2; do stage table2 "$ROOT/table2-fashion" "$e" "VGON,VAE"; done
