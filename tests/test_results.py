"""The committed studies in ``results/``: every report is made from run records that are committed
beside it (run directories, or packed records: docs/records.md), regenerating it from those records
alone gives the committed tables, and a packed study stays within its size budget."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pinnbench import packed
from pinnbench.report.collect import find_run_dirs
from pinnbench.report.committed import differences

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
REPORTS = sorted(p.parent.relative_to(RESULTS).as_posix() for p in RESULTS.rglob("summary.csv")
                 if "runs" not in p.relative_to(RESULTS).parts)  # a report, not a run record
STUDIES = sorted(p.name for p in RESULTS.iterdir() if p.is_dir())
KIB_PER_RUN = 20
"""Budget of a packed study: on average at most this many KiB per run, everything in its directory
counted (records, tables, README)."""
RESULTS_MIB = 40
"""Budget of ``results/`` once every study is packed."""


def test_there_are_committed_studies():
    assert REPORTS, "results/ holds no report"


@pytest.mark.parametrize("study", REPORTS)
def test_a_report_lists_exactly_the_committed_run_records(study, monkeypatch):
    monkeypatch.chdir(ROOT)  # runs.csv names run directories relative to the repository's root
    listed = set(pd.read_csv(f"results/{study}/runs.csv")["run_dir"])
    found = {d.as_posix() for d in find_run_dirs([f"results/{study}/runs"])} if Path(
        f"results/{study}/runs").is_dir() else set()
    assert found == listed, (f"results/{study}: {len(listed - found)} run(s) in runs.csv without a committed record, "
                             f"{len(found - listed)} committed record(s) not in the report")


@pytest.mark.parametrize("study", REPORTS)
def test_a_report_regenerates_from_its_committed_records(study, monkeypatch):
    monkeypatch.chdir(ROOT)
    if not Path(f"results/{study}/runs").is_dir():
        pytest.fail(f"results/{study}/runs is missing: the report cannot be regenerated")
    found = differences(f"results/{study}")
    assert not found, "\n".join(found)


def runs_dirs(study: str) -> list[Path]:
    """The record directories of a study's reports (a study may hold several, e.g. a supplement)."""
    dirs = [RESULTS / r / "runs" for r in REPORTS if (r + "/").startswith(study + "/") and (RESULTS / r / "runs").is_dir()]
    own = RESULTS / study / "runs"  # a study still without a report of its own (one in progress)
    return dirs + [own] if own.is_dir() and own not in dirs else dirs


def is_packed_study(study: str) -> bool:
    dirs = runs_dirs(study)
    return bool(dirs) and all(packed.is_packed(d) and not any(d.rglob("summary.json")) for d in dirs)


@pytest.mark.parametrize("study", STUDIES)
def test_a_packed_study_stays_within_its_size_budget(study):
    if not is_packed_study(study):
        pytest.skip(f"results/{study} is still in run directories (convert it with scripts/pack_study.sh)")
    runs = sum(len(packed.open_packed(d).runs()) for d in runs_dirs(study))
    size = packed.study_size(RESULTS / study)
    assert runs and size <= KIB_PER_RUN * 1024 * runs, (
        f"results/{study}: {size / 1024 / runs:.1f} KiB per run ({size / 1024:.0f} KiB for {runs} runs), over the "
        f"budget of {KIB_PER_RUN} KiB per run: pack with --thin, keep fewer weights, or leave out figures")


def test_results_as_a_whole_stay_within_budget_once_every_study_is_packed():
    unpacked = [s for s in STUDIES if not is_packed_study(s)]
    if unpacked:
        pytest.skip(f"not every study is packed yet: {', '.join(unpacked)}")
    size = packed.study_size(RESULTS)
    assert size <= RESULTS_MIB * 1024 ** 2, f"results/: {size / 1024 ** 2:.1f} MiB, over {RESULTS_MIB} MiB"


def test_reports_commit_no_figures_once_packed():
    drawn = [p.relative_to(ROOT).as_posix() for s in STUDIES if is_packed_study(s)
             for p in (RESULTS / s).rglob("*") if p.suffix in (".png", ".pdf", ".svg")]
    assert not drawn, f"figures are drawn by `pinnbench report`, not committed: {drawn[:5]}"
