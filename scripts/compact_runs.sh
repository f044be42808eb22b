#!/usr/bin/env bash
# Copy the compact records of every run below SRC into DEST (same layout): summary.json, history.csv,
# the resolved configuration and overrides in .hydra/ and the trained weights (model.pt); no
# checkpoints, locks or logs (`pinnbench compact`, pinnbench/compact.py). Only runs with a summary
# are copied, so an interrupted study can be committed part by part and a relaunch of the sweep into
# SRC finishes the rest.
#
#   scripts/compact_runs.sh runs/burgers_study results/burgers_cpu/runs
set -euo pipefail
src=${1:?usage: $0 SRC DEST}; dest=${2:?usage: $0 SRC DEST}
"${PINNBENCH:-pinnbench}" compact "$src" "$dest"
