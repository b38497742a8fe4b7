#!/usr/bin/env bash
# Equal-budget CPU training of ultralight and FOMM, side by side (issue 11's recipe).
#
#   bash scripts/cpu_train.sh PHASE [extra facelab-train args...]      # PHASE: 128, 256 or all
#
# PHASE all runs the whole schedule: per model, the 128² phase and, once its budget is spent, the 256² phase
# (one background chain per model, so neither waits for the other; a phase that ended on anything but its
# budget stops its chain). Rerunning `all` in a new session resumes wherever each model stands.
#
# Starts one background process per model, one thread each, with identical data, augmentation, batch,
# precision, learning-rate schedule and training-time budget, so any other load on the machine slows both
# alike. Rerunning the same command resumes each run exactly from its newest checkpoint (a new session
# on the same machine); a run whose budget is spent exits at once. Phase 256 warm-starts from phase 128's
# newest checkpoint (the keypoint detector and dense motion keep their 64x64 view across the phases).
#
# Run folders live outside the checkout: $FACELAB_RUNS (default ~/.cache/facelab/runs)/cpu-PHASE/MODEL,
# each with log.csv (losses), curve.csv (held-out L1/AKD every 20 training-minutes) and train.log.
# Frame archives: $FACELAB_CACHE/data/{train,test}-256.npz (made here on first use from $FACELAB_DATA).
set -euo pipefail
PHASE=${1:?phase: 128, 256 or all}
shift
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-$ROOT/.venv/bin/python}
DATA=${FACELAB_DATA:-$ROOT/../shared/data}
CACHE=${FACELAB_CACHE:-$HOME/.cache/facelab}
RUNS=${FACELAB_RUNS:-$CACHE/runs}
MODELS=${MODELS:-ultralight fomm}
# HOURS: training-hours in all, the 128² phase's included (a 256² warm start carries its step and hours, so
# the curves go on along one CPU-hours axis): 4.5 h at 128², then 2 h more at 256². HOURS sets one phase's;
# HOURS_128 and HOURS_256 set each phase's default (what `all` uses).
# LR_DROPS: training-hours where the learning rate drops 10x, the same for both models: 60 % and 90 % of the
# 6.5 h schedule, as FOMM's recipe drops at epochs 60 and 90 of 100.
LR_DROPS=${LR_DROPS:-3.9 5.85}
case $PHASE in
  128) HOURS=${HOURS:-${HOURS_128:-4.5}} ;;
  256) HOURS=${HOURS:-${HOURS_256:-6.5}} ;;
  all) ;;
  *) echo "phase must be 128, 256 or all" >&2; exit 2 ;;
esac
mkdir -p "$CACHE/data"
for split in train test; do
  if [ ! -f "$CACHE/data/$split-256.npz" ]; then
    "$PY" -m lab.cli export-frames "$DATA" "$CACHE/data/$split-256.npz" --split "$split" --size 256
  fi
done
if [ "$PHASE" = all ]; then
  for m in $MODELS; do
    log=$RUNS/cpu-128/$m/train.log
    mkdir -p "$RUNS/cpu-128/$m" "$RUNS/cpu-256/$m"
    # WAIT=1: the phase script waits for its training process, so the 256² phase starts when 128² ends
    setsid nohup env -u HOURS bash -c '
      WAIT=1 MODELS="$1" bash "$0" 128 "${@:3}"
      if tail -n 1 "$2" | grep -q "\"budget_spent\": true"; then  # the run summary, its last line
        WAIT=1 MODELS="$1" bash "$0" 256 "${@:3}"
      else
        echo "cpu_train.sh all: $1 128² phase ended before its budget was spent (see $2); 256² not started" >&2
      fi' "$0" "$m" "$log" "$@" >> "$RUNS/cpu-256/$m/chain.log" 2>&1 &
    echo "$m: 128² then 256² chained (pid $!) -> $RUNS/cpu-{128,256}/$m"
  done
  exit 0
fi
export PYTHONUNBUFFERED=1
pids=()
cd "$ROOT"  # python -m imports this tree's lab/, whatever the caller's folder
for m in $MODELS; do
  out=$RUNS/cpu-$PHASE/$m
  mkdir -p "$out"
  recipe=$ROOT/scripts/cpu-train.yaml  # a model's own recipe file, when it has one, adds to the common one
  [ -f "$ROOT/scripts/cpu-train-$m.yaml" ] && recipe=$ROOT/scripts/cpu-train-$m.yaml
  args=(--model "$m" --data "$CACHE/data/train-256.npz" --eval-data "$CACHE/data/test-256.npz" --out "$out"
        --size "$PHASE" --threads 1 --num-workers 0 --batch-size 4 --precision auto
        --config "$recipe" --max-train-hours "$HOURS" --eval-every-minutes 20 --no-progress)
  read -ra drops <<< "$LR_DROPS"
  if [ ${#drops[@]} -gt 0 ]; then args+=(--lr-drop-hours "${drops[@]}"); fi
  if [ "$PHASE" = 256 ] && [ ! -d "$out/checkpoints" ]; then
    init=$(ls "$RUNS/cpu-128/$m/checkpoints"/step_*.pt | tail -n 1)
    args+=(--init-from "$init")
  fi
  OMP_NUM_THREADS=1 setsid -w nohup "$PY" -m lab.cli train "${args[@]}" "$@" >> "$out/train.log" 2>&1 &
  echo "$m: pid $! -> $out"
  pids+=($!)
done
if [ "${WAIT:-0}" = 1 ]; then
  wait "${pids[@]}"
fi
