"""The committed studies in ``results/``: every report is made from run records that are committed
beside it, and regenerating it from those records alone gives the committed tables."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from pinnbench.report import build_report
from pinnbench.report.collect import find_run_dirs

ROOT = Path(__file__).resolve().parents[1]
STUDIES = sorted(p.parent.relative_to(ROOT / "results").as_posix() for p in (ROOT / "results").rglob("summary.csv")
                 if "runs" not in p.relative_to(ROOT / "results").parts)  # a report, not a run record
TABLES = ["runs.csv", "summary.csv", "ranks.csv", "time_to_target.csv", "pairs.csv", "conflicts.csv", "weights.csv"]
OPTIONAL = {"conflicts.csv": "log conflict diagnostics", "weights.csv": "weight the losses"}  # only where runs do


def test_there_are_committed_studies():
    assert STUDIES, "results/ holds no report"


@pytest.mark.parametrize("study", STUDIES)
def test_a_report_lists_exactly_the_committed_run_records(study, monkeypatch):
    monkeypatch.chdir(ROOT)  # runs.csv names run directories relative to the repository's root
    listed = set(pd.read_csv(f"results/{study}/runs.csv")["run_dir"])
    found = {d.as_posix() for d in find_run_dirs([f"results/{study}/runs"])} if Path(
        f"results/{study}/runs").is_dir() else set()
    assert found == listed, (f"results/{study}: {len(listed - found)} run(s) in runs.csv without a committed record, "
                             f"{len(found - listed)} committed record(s) not in the report")


@pytest.mark.parametrize("study", STUDIES)
def test_a_report_regenerates_from_its_committed_records(study, monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    if not Path(f"results/{study}/runs").is_dir():
        pytest.fail(f"results/{study}/runs is missing: the report cannot be regenerated")
    metric = pd.read_csv(f"results/{study}/summary.csv")["metric"].iloc[0]  # the report's --metric
    baseline = re.search(r"^Baseline: `([^`]+)` \(`--baseline`\)", Path(f"results/{study}/summary.md").read_text(),
                         re.MULTILINE)  # the report's --baseline, stated in its summary.md when not Adam
    build_report([f"results/{study}/runs"], tmp_path, figures=False, metric=metric,
                 **({"baseline": baseline.group(1)} if baseline else {}))
    for name in TABLES:
        if name in OPTIONAL and not (ROOT / "results" / study / name).is_file():
            assert not (tmp_path / name).is_file(), f"results/{study}: its runs {OPTIONAL[name]}, but no {name}"
            continue
        committed = pd.read_csv(ROOT / "results" / study / name)
        made = pd.read_csv(tmp_path / name)
        pd.testing.assert_frame_equal(made, committed, check_exact=False, rtol=1e-9, obj=f"results/{study}/{name}")
