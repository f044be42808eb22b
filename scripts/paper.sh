#!/usr/bin/env bash
# The ConFIG paper's PINN study: the equal-iterations sweep, the equal-wall-time sweep, then the report.
#
#   scripts/paper.sh cpu   [OVERRIDES...]   # CPU-sized problems: +experiment=paper_{iterations,walltime}_cpu
#   scripts/paper.sh paper [OVERRIDES...]   # the paper's sizes:   +experiment=paper_{iterations,walltime}
#
# OVERRIDES are Hydra overrides given to both sweeps (e.g. device=cuda, hydra/launcher=slurm).
# Runs are written below runs/; a relaunch skips finished runs and resumes interrupted ones.
# The report (tables and figures of every run below runs/) goes to results/paper or results/paper-cpu.
# PINNBENCH names the command to call (default: pinnbench on the PATH).
# Exit status: 0 when every run completed; 1 when a sweep had a diverged or failed run (the report is
# still written and lists them); 2 on a usage error or a configuration the sweep refused.
set -uo pipefail

PINNBENCH=${PINNBENCH:-pinnbench}
case "${1:-}" in
  cpu) suffix=_cpu results=results/paper-cpu ;;
  paper) suffix= results=results/paper ;;
  *) echo "usage: $0 cpu|paper [HYDRA_OVERRIDES...]" >&2; exit 2 ;;
esac
shift

status=0
for budget in iterations walltime; do
  echo "== sweep +experiment=paper_${budget}${suffix}"
  "$PINNBENCH" run -m "+experiment=paper_${budget}${suffix}" "$@"
  rc=$?
  if [ "$rc" -eq 2 ]; then exit 2; fi  # the configuration was refused: nothing ran
  if [ "$rc" -ne 0 ]; then status=1; fi
done

echo "== report of runs/ into ${results}"
"$PINNBENCH" report runs --out "$results" || exit $?
if [ "$status" -ne 0 ]; then
  echo "some runs diverged or failed: see ${results}/summary.md ('Runs not in the means')" >&2
fi
exit "$status"
