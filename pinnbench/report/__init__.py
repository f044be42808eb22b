"""The reporter: run directories in, tables and figures out (``pinnbench report RUNS... --out DIR``).

:func:`~pinnbench.report.collect.collect_runs` reads the runs into one table,
:func:`~pinnbench.report.tables.summarize` groups them over seeds and pairs them with Adam,
:func:`~pinnbench.report.tables.rank_table` and :mod:`pinnbench.report.targets` compare across
settings and over time, :mod:`pinnbench.report.figures` and :mod:`pinnbench.report.overview` draw;
:func:`build_report` does all of it for one error metric and writes ``runs.csv``, ``summary.csv``,
``summary.md``, ``summary.tex``, ``ranks.csv``, ``time_to_target.csv``, ``pairs.csv`` (every two
methods seed by seed), ``conflicts.csv`` (:mod:`pinnbench.report.conflicts`, where runs log conflict
diagnostics), ``weights.csv`` (:mod:`pinnbench.report.weights`, where methods weight the losses) and
``figures/``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import pandas as pd

from pinnbench.errors import ConfigError
from pinnbench.report import overview, tables, targets, weights
from pinnbench.report.collect import DEFAULT_METRIC, DIVERGED, SETTING, collect_runs, read_history
from pinnbench.report.conflicts import conflict_table
from pinnbench.report.figures import by_method, draw_all
from pinnbench.report.style import PANEL_TITLES, method_colors
from pinnbench.report.tables import CI_SEED, N_RESAMPLES, summarize

__all__ = ["Report", "build_report", "collect_runs", "summarize"]

EXCLUDED_COLUMNS = ["run_dir", "problem", "size", "method", "n_losses", "seed", "budget", "budget_amount", "status",
                    "iterations", "note"]


@dataclass
class Report:
    runs: pd.DataFrame
    summary: pd.DataFrame
    notes: list[str]
    files: list[Path]
    metric: str = DEFAULT_METRIC
    ranks: pd.DataFrame = field(default_factory=pd.DataFrame)
    targets: pd.DataFrame = field(default_factory=pd.DataFrame)
    pairs: pd.DataFrame = field(default_factory=pd.DataFrame)
    target_source: str = ""  # where the time-to-target targets come from, in words
    conflicts: pd.DataFrame | None = None
    weights: pd.DataFrame | None = None
    baseline: str = tables.BASELINE
    common_ranks: dict[str, pd.DataFrame] = field(default_factory=dict)
    """Per budget kind whose methods ran different settings: mean ranks over the settings all ran."""

    def counts(self) -> str:
        """``5 runs: 3 completed and in the means, 1 diverged, 1 incomplete``."""
        statuses = self.runs["status"].value_counts()
        included = int(self.runs["included"].sum())
        parts = [f"{included} completed and in the means"]
        if statuses.get("completed", 0) > included:
            parts.append(f"{statuses['completed'] - included} completed without a finite {self.metric}")
        parts += [f"{n} {status}" for status, n in statuses.items() if status != "completed"]
        return f"{len(self.runs)} runs: " + ", ".join(parts)

    def excluded(self) -> pd.DataFrame:
        return self.runs.loc[~self.runs["included"], EXCLUDED_COLUMNS]


def markdown(report: Report, out: Path, n_resamples: int, seed: int) -> str:
    """summary.md: counts; seed statistics; comparisons with the baseline (Adam) and which are
    significant; ranks; time to target; excluded runs; conflicts; loss weights; notes; figures. Each
    table with its formulas."""
    summary, baseline, name = report.summary, report.baseline, tables.baseline_name(report.baseline)
    lines = ["# pinnbench report", "", f"Error metric E: `{report.metric}` (each run's final value; lower is "
             "better; choose another with `--metric`).", "", report.counts() + ".", "",
             *([f"Baseline: `{baseline}` (`--baseline`), in Adam's place: where the notes, and the columns of the "
                "CSV files (`improvement_over_adam_percent`, `speedup_vs_adam`), say Adam, they mean it.", ""]
               if baseline != tables.BASELINE else []),
             *(["Variants (the hash that ends their run directories' names):", "",
                *tables.variant_lines(report.runs), ""] if report.runs["variant"].ne("").any() else []),
             *[f"**{n}**\n" for n in report.notes if n.startswith("warning:")],
             *_paper_section(report),
             "## Errors over seeds", "", tables.to_markdown(tables.errors_view(summary)), "",
             tables.ERRORS_NOTE.format(metric=report.metric), "",
             f"## Against {name}", "", tables.to_markdown(tables.versus_view(summary, baseline)), "",
             tables.VERSUS_NOTE.format(level=tables.CI_LEVEL, n=n_resamples, seed=seed,
                                       min_pairs=tables.stats.MIN_WILCOXON_PAIRS), "",
             f"Wilcoxon signed-rank test against {name} at the {tables.ALPHA:.0%} level, per setting:", "",
             *(tables.significance_lines(summary, baseline=baseline)
               or [f"None: no setting has a method beside {name}."]), "",
             tables.PAIRS_NOTE.format(min_pairs=tables.stats.MIN_WILCOXON_PAIRS), ""]
    if len(report.ranks):
        lines += ["## Ranks across settings", "", tables.to_markdown(tables.ranks_view(report.ranks)), "",
                  tables.RANKS_NOTE, ""]
        for kind, common in report.common_ranks.items():
            title = PANEL_TITLES.get(kind, kind)
            lines += ([f"The methods ran different numbers of settings ({title}), so the mean ranks above do not "
                       f"compare; over only the settings every method ran:", "",
                       tables.to_markdown(tables.ranks_view(common)), ""] if len(common) else
                      [f"The methods ran different numbers of settings ({title}) and no setting has every method, "
                       "so the mean ranks above do not compare.", ""])
    if len(report.targets):
        lines += ["## Time to target", "", tables.to_markdown(targets.target_view(report.targets, baseline)), "",
                  tables.TARGET_NOTE.format(source=report.target_source), ""]
    excluded = report.excluded()
    lines += ["## Runs not in the means", ""]
    lines += [excluded.to_markdown(index=False), ""] if len(excluded) else ["None: every run completed.", ""]
    if report.conflicts is not None:
        lines += ["## Gradient conflict", "",
                  "Share of diagnosed iterations whose update has a negative cosine with some loss's gradient "
                  "(mean, min, max over seeds)" + (", and the same for the step the optimiser took, θ_t − θ_{t+1} "
                  "(`step_conflict_fraction_*`; empty where no run of the method logs it)"
                  if "step_conflict_fraction_mean" in report.conflicts else "") + ":", "",
                  report.conflicts.to_markdown(index=False, floatfmt=".3f"), ""]
    if report.weights is not None:
        lines += ["## Loss weights", "", weights.NOTE, "",
                  tables.to_markdown(weights.weights_view(report.weights)), ""]
    lines += ["## Notes", ""] + ([f"- {n}" for n in report.notes] or ["None."]) + [""]
    figures = [f for f in report.files if f.suffix == ".png"]
    lines += ["## Figures", ""] + ([f"- [{f.stem}]({f.relative_to(out).as_posix()})" for f in figures] or ["None."])
    return "\n".join(lines) + "\n"


def _paper_section(report: Report) -> list[str]:
    """The improvement over the baseline as the paper reports it, a table per budget kind (none without
    a comparison)."""
    summary = report.summary
    if not summary.loc[summary["method"] != report.baseline, "improvement_over_adam_percent"].notna().any():
        return []
    lines = [f"## Improvement over {tables.baseline_name(report.baseline)}, as the paper reports it", ""]
    for kind, view in tables.paper_views(summary, report.ranks, report.baseline).items():
        lines += [f"### {PANEL_TITLES.get(kind, kind).capitalize()}", "", tables.to_markdown(view), ""]
    return lines + [tables.PAPER_NOTE, ""]


def _histories(runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """history.csv of every included or diverged run, by run directory."""
    wanted = runs[runs["included"] | runs["status"].eq(DIVERGED)]
    found = {d: read_history(d) for d in wanted["run_dir"]}
    return {d: h for d, h in found.items() if h is not None}


def build_report(paths: Iterable[str | os.PathLike], out: str | os.PathLike, *, figures: bool = True,
                 n_resamples: int = N_RESAMPLES, seed: int = CI_SEED, metric: str = DEFAULT_METRIC,
                 given_targets: dict[str, float] | None = None, improvement_style: str = "log",
                 baseline: str = tables.BASELINE) -> Report:
    """Read every run below ``paths`` and write the report on ``metric`` into ``out``, every method
    compared with ``baseline`` (a method label, Adam by default); raises
    :class:`~pinnbench.errors.ConfigError` for a path that is missing or holds no run, a metric no
    completed run records, a target for a problem without runs, or a ``--baseline`` no run has."""
    runs = collect_runs(paths, metric)
    methods = sorted(runs["method"].dropna().unique())
    if baseline != tables.BASELINE and baseline not in methods:  # without Adam the notes say what is missing
        raise ConfigError(f"--baseline {baseline}: no run has this method; methods: {', '.join(methods)}.")
    summary = summarize(runs, metric, n_resamples, seed, baseline)
    histories = _histories(runs)
    goals, target_notes = targets.setting_targets(runs, metric, given_targets or {}, baseline)
    runs = targets.times_to_target(runs, histories, metric, goals)
    unknown = runs["run_dir"][runs["target"].notna() & runs["seconds_to_target"].isna()
                              & (runs["included"] | runs["status"].eq(DIVERGED))]
    if len(unknown):
        listed = ", ".join(sorted(unknown)[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        target_notes.append(f"{len(unknown)} run(s) without {metric} in a history.csv are left out of the time to "
                            f"target: {listed}.")
    medians = tables.setting_medians(runs, metric)
    report = Report(runs, summary.table, list(summary.notes) + target_notes, [], metric, tables.rank_table(medians),
                    targets.target_table(runs, set(given_targets or {}), baseline),
                    pairs=tables.pairs_table(runs, metric), baseline=baseline,
                    target_source=f"{tables.baseline_name(baseline)}'s median final E over its included seeds in "
                                  "the setting")
    if given_targets:
        report.target_source = (f"given per problem ({', '.join(f'{k}={v:g}' for k, v in given_targets.items())}), "
                                "else " + report.target_source)
    report.common_ranks = tables.common_rank_table(medians)
    report.notes[:0] = tables.short_budget_notes(runs, default_iterations)
    excluded = len(report.excluded())
    if excluded:
        report.notes.insert(0, f"{excluded} run(s) diverged, failed, did not finish or lack {metric}: listed under "
                               "'Runs not in the means', counted in n_excluded, kept out of every mean.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if figures:
        report.files += _draw(report, medians, histories, out / "figures", improvement_style)
    grouped = {key: by_method(group, histories) for key, group in runs[runs["included"]].groupby(SETTING)}
    conflicts, weighted = conflict_table(runs, grouped), weights.weight_table(grouped)
    report.conflicts, report.weights = _table(conflicts, out / "conflicts.csv"), _table(weighted, out / "weights.csv")
    report.files += [out / n for n, t in (("conflicts.csv", report.conflicts), ("weights.csv", report.weights))
                     if t is not None]
    _write(report, out, n_resamples, seed)
    return report


def default_iterations(problem: str, size: str) -> int | None:
    """The iterations of ``size`` in ``configs/problem/<problem>.yaml`` (None where there is no such file)."""
    from omegaconf import OmegaConf

    from pinnbench.cli import config_dir

    path = config_dir() / "problem" / f"{problem}.yaml"
    if not path.is_file():
        return None
    sizes = OmegaConf.load(path).get("sizes") or {}
    return (sizes.get(size) or {}).get("iterations")


def _table(table: pd.DataFrame, path: Path) -> pd.DataFrame | None:
    """Write ``table`` to ``path`` when it has rows (and return it); else remove a ``path`` left by an
    earlier report into the same directory (and return None)."""
    if not len(table):
        path.unlink(missing_ok=True)
        return None
    table.to_csv(path, index=False)
    return table


def _draw(report: Report, medians: pd.DataFrame, histories: dict[str, pd.DataFrame], out: Path,
          improvement_style: str) -> list[Path]:
    """Every figure, all with one colour per method."""
    colors = method_colors(report.runs["method"].dropna(), report.baseline)
    files = overview.improvement_figure(report.summary, out, colors, improvement_style, report.baseline)
    if not files:
        report.notes.append(f"No improvement over {tables.baseline_name(report.baseline)} could be computed, so "
                            "there is no improvement figure.")
    files += overview.profile_figure(medians, out, colors) + overview.target_figure(report.runs, out, colors)
    return files + draw_all(report.runs, out, report.notes, metric=report.metric, histories=histories, colors=colors)


def _write(report: Report, out: Path, n_resamples: int, seed: int) -> None:
    names = ["runs.csv", "summary.csv", "ranks.csv", "time_to_target.csv", "pairs.csv", "summary.tex", "summary.md"]
    report.runs.to_csv(out / "runs.csv", index=False)
    report.summary.to_csv(out / "summary.csv", index=False)
    report.ranks.to_csv(out / "ranks.csv", index=False)
    report.targets.to_csv(out / "time_to_target.csv", index=False)
    report.pairs.to_csv(out / "pairs.csv", index=False)
    (out / "summary.tex").write_text("\n\n".join(tables.to_latex(v) for v in (
        *tables.paper_views(report.summary, report.ranks, report.baseline).values(), tables.errors_view(report.summary),
        tables.versus_view(report.summary, report.baseline))) + "\n")
    report.files += [out / n for n in names]
    (out / "summary.md").write_text(markdown(report, out, n_resamples, seed))
