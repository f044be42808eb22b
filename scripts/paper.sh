#!/usr/bin/env bash
# The ConFIG paper's PINN study: the equal-iterations sweep, the equal-wall-time sweep, then the report.
#
#   scripts/paper.sh cpu   [OVERRIDES...]   # CPU-sized problems: +experiment=paper_{iterations,walltime}_cpu
#   scripts/paper.sh paper [OVERRIDES...]   # the paper's sizes:   +experiment=paper_{iterations,walltime}
#
# OVERRIDES are Hydra overrides given to both sweeps (e.g. device=cuda, hydra/launcher=slurm).
# Runs are written below runs/paper_cpu or runs/paper; a relaunch skips finished runs and resumes
# interrupted ones. The committed records (results/paper_cpu/runs or results/paper/runs) are first
# copied into the sweep directory, where no run of that name is, so that on a fresh clone the study
# continues where its committed part ends instead of starting again. After the sweeps, the compact
# records of every run (pinnbench compact: summary, history, resolved config, weights) are copied
# back there, and the report is made from those alone:
# `pinnbench report results/paper_cpu/runs --out results/paper_cpu` regenerates it.
# PINNBENCH names the command to call (default: pinnbench on the PATH).
# Exit status: 0 when every run completed; 1 when a sweep had a diverged or failed run (the report is
# still written and lists them); 2 on a usage error or a configuration the sweep refused.
set -uo pipefail

PINNBENCH=${PINNBENCH:-pinnbench}
case "${1:-}" in
  cpu) suffix=_cpu results=results/paper_cpu sweep=runs/paper_cpu ;;
  paper) suffix= results=results/paper sweep=runs/paper ;;
  *) echo "usage: $0 cpu|paper [HYDRA_OVERRIDES...]" >&2; exit 2 ;;
esac
shift

if [ -d "${results}/runs" ]; then
  mkdir -p "$sweep"
  cp -R -n "${results}/runs/." "${sweep}/"
  echo "== committed records of ${results}/runs copied into ${sweep} (existing runs kept)"
fi

status=0
for budget in iterations walltime; do
  echo "== sweep +experiment=paper_${budget}${suffix}"
  "$PINNBENCH" run -m "+experiment=paper_${budget}${suffix}" "hydra.sweep.dir=${sweep}" "$@"
  rc=$?
  if [ "$rc" -eq 2 ]; then exit 2; fi  # the configuration was refused: nothing ran
  if [ "$rc" -ne 0 ]; then status=1; fi
done

if [ -d "$sweep" ]; then
  "$PINNBENCH" compact "$sweep" "${results}/runs"
fi
echo "== report of ${results}/runs into ${results}"
"$PINNBENCH" report "${results}/runs" --out "$results" || exit $?
if [ "$status" -ne 0 ]; then
  echo "some runs diverged or failed: see ${results}/summary.md ('Runs not in the means')" >&2
fi
exit "$status"
