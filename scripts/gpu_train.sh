#!/usr/bin/env bash
# Train on a lent GPU machine (the workplace's `device` tool), time-boxed, and hand the weights back.
#
#   bash scripts/gpu_train.sh MODEL MINUTES [INIT_WEIGHTS] [extra lab.train args...]
#
# Runs in the repository root there, with the prepared data carried in `.carry/vox` (make it here with
# `facelab prepare-data $FACELAB_DATA .carry/vox --splits train`). The run folder runs/MODEL stays on the
# machine while it is warm, so consecutive calls resume exactly; INIT_WEIGHTS (an fp16 .safetensors brought
# back by an earlier session, joined from its parts) starts a fresh machine from those weights, with the
# step count and GPU-minutes carried over. The newest checkpoint is exported as fp16 safetensors and split
# into 15 MiB parts under $OUT (the device tool returns files of at most 16 MiB): join them with
# `cat MODEL.safetensors.part-* > MODEL.safetensors`.
set -euo pipefail
MODEL=${1:?model name}
MINUTES=${2:?minutes of training}
INIT=${3:-}
shift $(( $# < 3 ? $# : 3 ))
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
OUT=${OUT:-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
args=(--model "$MODEL" --data .carry/vox --out "runs/$MODEL" --time-budget-minutes "$MINUTES" --no-progress)
if [ -n "$INIT" ] && [ ! -d "runs/$MODEL/checkpoints" ]; then args+=(--init-from "$INIT"); fi
python3 -m lab.train "${args[@]}" "$@" 2>&1 | tee "$OUT/train-$MODEL.log" | grep -v "^\s*$" | tail -n 40
tail -n 3 "runs/$MODEL/log.csv" > "$OUT/last-losses-$MODEL.csv"
python3 -m lab.cli export-weights "runs/$MODEL" "$OUT/$MODEL.safetensors"
split -b 15M -d "$OUT/$MODEL.safetensors" "$OUT/$MODEL.safetensors.part-"
rm "$OUT/$MODEL.safetensors"
ls -la "$OUT"
