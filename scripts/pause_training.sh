#!/usr/bin/env bash
# Pause or resume every running `facelab train` process, between steps and outside its time budget.
#
#   bash scripts/pause_training.sh stop    # SIGUSR1; waits until each run has written its PAUSED file
#   bash scripts/pause_training.sh cont    # SIGUSR2
#
# Use it around a benchmark so its figures are clean: both equal-budget runs pause alike, and the wait
# is in no step's time (kill -STOP would freeze a step and count the pause as training time).
set -euo pipefail
what=${1:?stop or cont}
pids=$(pgrep -f "lab.cli train" || true)
[ -z "$pids" ] && { echo "no training process"; exit 0; }
case $what in
  stop)
    kill -USR1 $pids
    for pid in $pids; do  # the run folder is the process's --out argument
      out=$(tr '\0' '\n' < /proc/$pid/cmdline | grep -A1 -x -- --out | tail -n 1)
      for _ in $(seq 600); do [ -f "$out/PAUSED" ] && break; sleep 0.1; done
      [ -f "$out/PAUSED" ] && echo "paused: $pid ($out)" || echo "pid $pid did not confirm within 60 s" >&2
    done ;;
  cont) kill -USR2 $pids; echo "resumed: $(echo $pids | tr '\n' ' ')" ;;
  *) echo "stop or cont" >&2; exit 2 ;;
esac
