#!/usr/bin/env bash
# The ConFIG paper's PINN study: the equal-iterations sweep, the equal-wall-time sweep, then the report.
#
#   scripts/paper.sh cpu   [OVERRIDES...]   # CPU-sized problems: +experiment=paper_{iterations,walltime}_cpu
#   scripts/paper.sh paper [OVERRIDES...]   # the paper's sizes:   +experiment=paper_{iterations,walltime}
#
# OVERRIDES are Hydra overrides given to both sweeps (e.g. device=cuda, hydra/launcher=slurm).
# Runs are written below runs/paper_cpu or runs/paper; a relaunch skips finished runs and resumes
# interrupted ones. The committed records (results/paper_cpu/runs or results/paper/runs) are first
# written into the sweep directory as run directories, where no run of that name is (`pinnbench
# expand` for packed records, a copy for run directories), so that on a fresh clone the study
# continues where its committed part ends instead of starting again. After the sweeps, the new runs
# are packed into a new part of the committed records (`pinnbench pack`, docs/records.md; PACK_ARGS
# adds options such as `--thin 200`), or, for a study still committed as run directories, their
# compact records are copied there (`pinnbench compact`); the report is made from those alone:
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

packed() { compgen -G "${results}/runs/part-*-summaries.parquet" >/dev/null; }

if packed; then
  "$PINNBENCH" expand "${results}/runs" "$sweep" || exit 2
  echo "== committed records of ${results}/runs expanded into ${sweep} (existing runs kept)"
elif [ -d "${results}/runs" ]; then
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
  if packed || [ ! -d "${results}/runs" ]; then
    # shellcheck disable=SC2086  # PACK_ARGS: options, split on spaces
    "$PINNBENCH" pack "$sweep" "${results}/runs" ${PACK_ARGS:-} || exit 2
  else
    "$PINNBENCH" compact "$sweep" "${results}/runs"
  fi
fi
echo "== report of ${results}/runs into ${results}"
"$PINNBENCH" report "${results}/runs" --out "$results" || exit $?
if [ "$status" -ne 0 ]; then
  echo "some runs diverged or failed: see ${results}/summary.md ('Runs not in the means')" >&2
fi
exit "$status"
