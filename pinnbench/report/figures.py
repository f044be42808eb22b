"""Figures per setting (matplotlib, no display needed), each written as PNG and PDF; the figures
across settings are in :mod:`pinnbench.report.overview`. Every figure colours a method with
:func:`~pinnbench.report.style.method_colors`.

- ``<metric>_<setting>``: the error metric against iteration and against training time, median
  over seeds with the interquartile range as a band, log error axis;
- ``losses_<setting>``: every loss (``loss_<name>`` in history.csv) against iteration, per method,
  median over seeds with the interquartile band: how each method trades residual against boundary
  and initial losses;
- ``conflict_<setting>``: for runs with conflict diagnostics, gradient cosines over training and
  the share of iterations whose update conflicts with some loss (:mod:`pinnbench.report.conflicts`);
- ``fields_<problem>``: prediction, reference and error of the best run of each problem, drawn by
  :mod:`pinnbench.fieldplot` (see :func:`field_figure`).

Only runs included in the means are drawn.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pinnbench.report.collect import DEFAULT_METRIC, SETTING, read_history
from pinnbench.report.conflicts import conflict_figure
from pinnbench.report.stats import seed_band
from pinnbench.report.style import FORMATS, file_label, method_colors, save
from pinnbench.report.tables import setting_label


def _curve(history: pd.DataFrame, x: str, y: str) -> tuple[np.ndarray, np.ndarray]:
    rows = history[[x, y]].dropna()
    rows = rows[np.isfinite(rows[y]) & (rows[y] > 0)]
    return rows[x].to_numpy(float), rows[y].to_numpy(float)


def _draw(ax, histories: dict[str, list[pd.DataFrame]], x: str, y: str, colors: dict[str, str]) -> bool:
    drawn = False
    for method, frames in histories.items():
        curves = [c for c in (_curve(h, x, y) for h in frames if y in h) if len(c[0])]
        if not curves:
            continue
        grid, median, low, high = seed_band(curves, log=True)
        ax.plot(grid, median, label=f"{method} ({len(curves)} seed{'s' * (len(curves) > 1)})", linewidth=1.2,
                color=colors.get(method))
        if len(curves) > 1:
            ax.fill_between(grid, low, high, color=colors.get(method), alpha=0.2, linewidth=0)
        drawn = True
    if drawn:
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    return drawn


def by_method(runs: pd.DataFrame, histories: dict[str, pd.DataFrame] | None = None) -> dict[str, list[pd.DataFrame]]:
    """history.csv of each included run, by method, from ``histories`` (by run directory) or read."""
    found: dict[str, list[pd.DataFrame]] = {}
    for _, run in runs[runs["included"]].iterrows():
        history = histories.get(run["run_dir"]) if histories is not None else read_history(run["run_dir"])
        if history is not None:
            found.setdefault(run["method"], []).append(history)
    return found


def error_curves(setting: dict, histories: dict[str, list[pd.DataFrame]], out_dir: Path, colors: dict[str, str],
                 metric: str = DEFAULT_METRIC) -> list[Path]:
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    axes = fig.subplots(1, 2)
    drawn = [_draw(ax, histories, x, metric, colors) for ax, x in zip(axes, ("iteration", "seconds"))]
    if not any(drawn):
        return []
    axes[0].set_xlabel("iteration")
    axes[1].set_xlabel("training time [s]")
    axes[0].set_ylabel(metric)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{setting_label(setting, short=True)}: {metric} (median over seeds, band: interquartile range)")
    return save(fig, out_dir, f"{metric}_{file_label(setting)}")


def loss_curves(setting: dict, histories: dict[str, list[pd.DataFrame]], out_dir: Path,
                colors: dict[str, str]) -> list[Path]:
    names = sorted({c for frames in histories.values() for h in frames for c in h.columns if c.startswith("loss_")})
    if not names:
        return []
    fig = Figure(figsize=(4 * len(names), 3.6), layout="constrained")
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names):
        _draw(ax, histories, "iteration", name, colors)
        ax.set_title(name.removeprefix("loss_") + " loss")
        ax.set_xlabel("iteration")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{setting_label(setting, short=True)}: losses (median over seeds, band: interquartile range)")
    return save(fig, out_dir, f"losses_{file_label(setting)}")


FIELD_PLOTTER = ("pinnbench.fieldplot", "plot_run")
"""The hook for prediction / reference / error fields: ``plot_run(run_dir, out_path)`` in this module."""


def field_plotter() -> Callable | None:
    """The field-drawing function, or None when :mod:`pinnbench.fieldplot` does not provide it."""
    module_name, function = FIELD_PLOTTER
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    return getattr(module, function, None)


def field_figure(run_dir: Path, out_dir: Path, name: str, notes: list[str]) -> list[Path]:
    """Prediction, reference and error fields of one run (one file per format); a run that cannot
    be drawn (no checkpoint, a problem no longer installed) gets a note instead."""
    plot = field_plotter()
    if plot is None:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.{ext}" for ext in FORMATS]
    try:
        for path in paths:
            plot(run_dir, path)
    except Exception as exc:  # the rest of the report stands without this figure
        notes.append(f"Fields of {run_dir} not drawn ({type(exc).__name__}: {exc}).")
        return [p for p in paths if p.is_file()]
    return paths


def best_runs(runs: pd.DataFrame, metric: str = DEFAULT_METRIC) -> pd.DataFrame:
    """The included run with the lowest final ``metric``, per problem."""
    included = runs[runs["included"]]
    return included.loc[included.groupby("problem")[metric].idxmin()]


def draw_all(runs: pd.DataFrame, out_dir: Path, notes: list[str], *, metric: str = DEFAULT_METRIC,
             histories: dict[str, pd.DataFrame] | None = None, colors: dict[str, str] | None = None) -> list[Path]:
    """Every per-setting figure of the report into ``out_dir``; appends to ``notes`` what could not
    be drawn."""
    colors = colors or method_colors(runs["method"].dropna())
    paths: list[Path] = []
    for key, group in runs[runs["included"]].groupby(SETTING):
        setting = dict(zip(SETTING, key))
        found = by_method(group, histories)
        curves = error_curves(setting, found, out_dir, colors, metric)
        if not curves and found:
            notes.append(f"{setting_label(setting)}: no {metric} in history.csv; no error curves.")
        paths += curves + loss_curves(setting, found, out_dir, colors)
        paths += conflict_figure(setting_label(setting, short=True), found, out_dir, f"conflict_{file_label(setting)}")
    if field_plotter() is None:
        notes.append(f"Field figures skipped: {FIELD_PLOTTER[0]}.{FIELD_PLOTTER[1]} is not available.")
    else:
        for _, run in best_runs(runs, metric).iterrows():
            paths += field_figure(Path(run["run_dir"]), out_dir, f"fields_{run['problem']}", notes)
    return paths
