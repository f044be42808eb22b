#!/usr/bin/env bash
# Copy the compact records of every run below SRC into DEST (same layout): summary.json, history.csv
# and the resolved configuration and overrides in .hydra/; no checkpoints, locks or logs. Only runs
# with a summary are copied (finished, diverged or failed), so an interrupted study can be committed
# part by part and a relaunch of the sweep into SRC finishes the rest.
#
#   scripts/compact_runs.sh runs/burgers_study results/burgers_cpu/runs
set -euo pipefail
src=${1:?usage: $0 SRC DEST}; dest=${2:?usage: $0 SRC DEST}
find "$src" -name summary.json | while read -r summary; do
  run=$(dirname "$summary"); rel=${run#"$src"/}
  mkdir -p "$dest/$rel/.hydra"
  cp "$run/summary.json" "$dest/$rel/"
  for f in history.csv .hydra/config.yaml .hydra/overrides.yaml; do
    if [ -f "$run/$f" ]; then cp "$run/$f" "$dest/$rel/$f"; fi
  done
done
