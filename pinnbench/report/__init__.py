"""The reporter: run directories in, tables and figures out (``pinnbench report RUNS... --out DIR``).

:func:`~pinnbench.report.collect.collect_runs` reads the runs into one table,
:func:`~pinnbench.report.tables.summarize` groups them over seeds and compares with Adam,
:func:`~pinnbench.report.figures.draw_all` draws; :func:`build_report` does all three and writes
``runs.csv``, ``summary.csv``, ``summary.md``, ``summary.tex`` and ``figures/``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import pandas as pd

from pinnbench.report.collect import SETTING, collect_runs
from pinnbench.report.conflicts import conflict_table
from pinnbench.report.figures import draw_all, read_histories
from pinnbench.report.tables import CI_SEED, N_RESAMPLES, TABLE_NOTES, summarize, to_latex, to_markdown

__all__ = ["Report", "build_report", "collect_runs", "summarize"]

EXCLUDED_COLUMNS = ["run_dir", "problem", "size", "method", "n_losses", "seed", "budget", "budget_amount", "status",
                    "iterations", "note"]


@dataclass
class Report:
    runs: pd.DataFrame
    summary: pd.DataFrame
    notes: list[str]
    files: list[Path]
    conflicts: pd.DataFrame | None = None

    def counts(self) -> str:
        """``5 runs: 3 completed and in the means, 1 diverged, 1 incomplete``."""
        statuses = self.runs["status"].value_counts()
        included = int(self.runs["included"].sum())
        parts = [f"{included} completed and in the means"]
        if statuses.get("completed", 0) > included:
            parts.append(f"{statuses['completed'] - included} completed without a finite test MSE")
        parts += [f"{n} {status}" for status, n in statuses.items() if status != "completed"]
        return f"{len(self.runs)} runs: " + ", ".join(parts)

    def excluded(self) -> pd.DataFrame:
        return self.runs.loc[~self.runs["included"], EXCLUDED_COLUMNS]


def markdown(report: Report, out: Path) -> str:
    """summary.md: counts, the summary table and its notes, excluded runs, notes, figures."""
    lines = ["# pinnbench report", "", report.counts() + ".", "", "## Summary", "",
             to_markdown(report.summary), "", TABLE_NOTES, ""]
    excluded = report.excluded()
    lines += ["## Runs not in the means", ""]
    lines += [excluded.to_markdown(index=False), ""] if len(excluded) else ["None: every run completed.", ""]
    if report.conflicts is not None:
        lines += ["## Gradient conflict", "",
                  "Share of diagnosed iterations whose update has a negative cosine with some loss's gradient "
                  "(mean, min, max over seeds):", "", report.conflicts.to_markdown(index=False, floatfmt=".3f"), ""]
    lines += ["## Notes", ""] + ([f"- {n}" for n in report.notes] or ["None."]) + [""]
    figures = [f for f in report.files if f.suffix == ".png"]
    lines += ["## Figures", ""] + ([f"- [{f.stem}]({f.relative_to(out).as_posix()})" for f in figures] or ["None."])
    return "\n".join(lines) + "\n"


def build_report(paths: Iterable[str | os.PathLike], out: str | os.PathLike, *, figures: bool = True,
                 n_resamples: int = N_RESAMPLES, seed: int = CI_SEED) -> Report:
    """Read every run below ``paths`` and write the report into ``out``; raises
    :class:`~pinnbench.errors.ConfigError` for a path that is missing or holds no run."""
    runs = collect_runs(paths)
    summary = summarize(runs, n_resamples, seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = Report(runs, summary.table, list(summary.notes), [])
    excluded = len(report.excluded())
    if excluded:
        report.notes.insert(0, f"{excluded} run(s) diverged, failed or did not finish: listed under "
                               "'Runs not in the means', counted in n_excluded, kept out of every mean.")
    if figures:
        report.files += draw_all(runs, summary.table, out / "figures", report.notes)
    for name in ("runs.csv", "summary.csv", "summary.tex", "summary.md"):
        report.files.append(out / name)
    conflicts = conflict_table(runs, {key: read_histories(group) for key, group
                                      in runs[runs["included"]].groupby(SETTING)})
    if len(conflicts):
        conflicts.to_csv(out / "conflicts.csv", index=False)
        report.files.append(out / "conflicts.csv")
        report.conflicts = conflicts
    runs.to_csv(out / "runs.csv", index=False)
    summary.table.to_csv(out / "summary.csv", index=False)
    (out / "summary.tex").write_text(to_latex(summary.table) + "\n")
    (out / "summary.md").write_text(markdown(report, out))
    return report
