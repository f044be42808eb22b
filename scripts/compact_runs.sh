#!/usr/bin/env bash
# Copy the compact records of every run below SRC into DEST (same layout): summary.json, history.csv,
# the resolved configuration and overrides in .hydra/ and the trained weights (model.pt); no
# checkpoints, locks or logs (`pinnbench compact`, pinnbench/compact.py). Only runs with a summary
# are copied, so an interrupted study can be committed part by part and a relaunch of the sweep into
# SRC finishes the rest.
#
# This is the per-run form of committed records; a study is now committed packed (a few files that
# only grow, docs/records.md): `pinnbench pack SRC DEST`, or scripts/pack_study.sh to convert one.
#
#   scripts/compact_runs.sh runs/burgers_study results/burgers_cpu/runs
set -euo pipefail
src=${1:?usage: $0 SRC DEST}; dest=${2:?usage: $0 SRC DEST}
"${PINNBENCH:-pinnbench}" compact "$src" "$dest"
