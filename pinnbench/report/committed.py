"""A committed study's report checked against its records: the tables regenerated from the records
alone (run directories or packed records, :mod:`pinnbench.packed`), with the report's own
``--metric`` and ``--baseline``, must equal the committed ones.

``python -m pinnbench.report.committed REPORT_DIR...`` prints the differences and exits 1 when a
table differs; run it from the directory the report's ``run_dir`` paths are relative to (the
repository's root for ``results/``).
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

import pandas as pd

TABLES = ["runs.csv", "summary.csv", "ranks.csv", "time_to_target.csv", "pairs.csv", "conflicts.csv", "weights.csv"]
OPTIONAL = {"conflicts.csv": "log conflict diagnostics", "weights.csv": "weight the losses"}
"""Tables a report writes only where its runs do what is said."""


def report_options(report_dir: Path) -> dict:
    """The ``metric`` and ``baseline`` a committed report was made with (summary.csv's metric column;
    the baseline its summary.md names when it is not Adam)."""
    metric = pd.read_csv(report_dir / "summary.csv")["metric"].iloc[0]
    baseline = re.search(r"^Baseline: `([^`]+)` \(`--baseline`\)", (report_dir / "summary.md").read_text(),
                         re.MULTILINE)
    return {"metric": metric, **({"baseline": baseline.group(1)} if baseline else {})}


def differences(report_dir: str | Path, runs_dir: str | Path | None = None) -> list[str]:
    """What differs between the committed tables of ``report_dir`` and those regenerated from
    ``runs_dir`` (default ``report_dir/runs``); empty when every table is the same (to 1e-9)."""
    from pinnbench.report import build_report

    report_dir = Path(report_dir)
    runs_dir = Path(runs_dir) if runs_dir is not None else report_dir / "runs"
    found = []
    with tempfile.TemporaryDirectory() as out:
        build_report([runs_dir], out, figures=False, **report_options(report_dir))
        for name in TABLES:
            committed, made = report_dir / name, Path(out) / name
            if not committed.is_file() and name in OPTIONAL:
                if made.is_file():
                    found.append(f"{report_dir}: its runs {OPTIONAL[name]}, but no {name} is committed")
                continue
            try:
                pd.testing.assert_frame_equal(pd.read_csv(made), pd.read_csv(committed), check_exact=False,
                                              rtol=1e-9, obj=str(committed))
            except (AssertionError, FileNotFoundError) as exc:
                found.append(str(exc))
    return found


def main(argv: list[str]) -> int:
    status = 0
    for report_dir in argv:
        found = differences(report_dir)
        print(f"{report_dir}: " + ("every table regenerates unchanged" if not found else "DIFFERS"))
        for line in found:
            print("  " + line.replace("\n", "\n  "))
        status |= bool(found)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
