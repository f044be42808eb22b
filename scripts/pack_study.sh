#!/usr/bin/env bash
# Convert a committed study from run directories to packed records, in place (docs/records.md).
# For every report of the study (a directory with summary.csv and runs/, e.g. results/methods_beyond_cpu
# and results/methods_beyond_cpu/causal): pack runs/ into runs.packed/ (`pinnbench pack`, keeping the
# weights of the best run of each problem by the report's metric), swap it in, regenerate the report's
# tables from the packed records and compare them with the committed ones. When they are the same, the
# run directories and the report's figures/ are deleted; otherwise the run directories are put back and
# the script stops with status 1. Nothing else is regenerated. Run it from the repository's root.
#
#   scripts/pack_study.sh results/burgers_cpu                # every history row kept
#   scripts/pack_study.sh results/beltrami_long_cpu --thin 0  # see docs/records.md for --thin
#
# PYTHON names the interpreter with pinnbench installed (default: python3).
set -euo pipefail
study=${1:?usage: $0 STUDY_DIR [pinnbench pack options]}; shift
PYTHON=${PYTHON:-python3}
[ -d "$study" ] || { echo "$study is not a directory" >&2; exit 2; }

mapfile -t reports < <(find "$study" -name summary.csv -not -path '*/runs/*' -printf '%h\n' | sort)
for report in "${reports[@]}"; do
  runs="$report/runs"
  if [ ! -d "$runs" ]; then echo "== $report: no runs/, left alone"; continue; fi
  if compgen -G "$runs/part-*-summaries.parquet" >/dev/null; then echo "== $runs: already packed"; continue; fi
  metric=$("$PYTHON" -c 'import sys, pandas; print(pandas.read_csv(sys.argv[1])["metric"].iloc[0])' "$report/summary.csv")
  echo "== $runs: packing (weights by $metric)"
  rm -rf "$runs.packed" "$runs.old"
  "$PYTHON" -m pinnbench pack "$runs" "$runs.packed" --metric "$metric" "$@"
  mv "$runs" "$runs.old"
  mv "$runs.packed" "$runs"
  if "$PYTHON" -m pinnbench.report.committed "$report"; then
    rm -rf "$runs.old" "$report/figures"
  else
    rm -rf "$runs"
    mv "$runs.old" "$runs"
    echo "$report: the tables differ; its run directories are left as they were" >&2
    exit 1
  fi
done
