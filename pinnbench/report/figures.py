"""Figures of a report (matplotlib, no display needed): each is written as PNG and PDF.

- ``improvement``: the paper's bars of improvement over Adam, per problem (and grouping) and
  method, one panel per budget kind (equal iterations, equal wall time), with the bootstrap CI;
- ``test_mse_<setting>``: test MSE against iteration and against training time, mean over seeds
  with the range over seeds as a band;
- ``losses_<setting>``: every loss (``loss_<name>`` in history.csv) against iteration, per method,
  mean over seeds with the range as a band: how each method trades residual against boundary and
  initial losses;
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

from pinnbench import records
from pinnbench.report.collect import SETTING, variant_tag
from pinnbench.report.conflicts import conflict_figure
from pinnbench.report.tables import BASELINE, setting_label

FORMATS = ("png", "pdf")
PANEL_TITLES = {"iterations": "equal iterations", "walltime": "equal wall time"}


def save(fig: Figure, out_dir: Path, name: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.{ext}" for ext in FORMATS]
    for path in paths:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return paths


def file_label(setting: dict) -> str:
    """``burgers-cpu_n3_it200``, and the variant's hash if there is one (as in run directory names)."""
    amount = setting["budget_amount"]
    budget = f"it{amount:g}" if setting["budget"] == "iterations" else f"wall{amount:g}s"
    label = f"{setting['problem']}-{setting['size']}_n{setting['n_losses']}_{budget}"
    return f"{label}_{variant_tag(setting['variant'])}" if setting["variant"] else label


def improvement_bars(summary: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Bars of improvement over Adam, one panel per budget kind; nothing when no row has one."""
    data = summary[(summary["method"] != BASELINE) & summary["improvement_over_adam_percent"].notna()]
    kinds = [k for k in PANEL_TITLES if (data["budget"] == k).any()]
    if not kinds:
        return []
    methods = sorted(data["method"].unique())
    most = max(data[data["budget"] == k].groupby(SETTING).ngroups for k in kinds)
    fig = Figure(figsize=(max(5.0, 1.0 + most * (0.6 + 0.25 * len(methods))), 3.6 * len(kinds)), layout="constrained")
    axes = fig.subplots(len(kinds), 1, squeeze=False)[:, 0]
    width = 0.8 / len(methods)
    for ax, kind in zip(axes, kinds):
        panel = data[data["budget"] == kind]
        settings = panel[SETTING].drop_duplicates().reset_index(drop=True)
        labels = [setting_label(s, short=True).replace(" ", "\n", 2) for _, s in settings.iterrows()]
        for j, method in enumerate(methods):
            rows = settings.merge(panel[panel["method"] == method], on=SETTING, how="left")
            values = rows["improvement_over_adam_percent"].to_numpy(float)
            err = np.abs(np.vstack([values - rows["ci_low"].to_numpy(float), rows["ci_high"].to_numpy(float) - values]))
            ax.bar(np.arange(len(settings)) + (j - (len(methods) - 1) / 2) * width, values, width, label=method,
                   yerr=err if np.isfinite(err).any() else None, capsize=2, error_kw={"elinewidth": 0.8})
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(np.arange(len(settings)), labels, fontsize=8)
        ax.set_ylabel("improvement over Adam [%]")
        ax.set_title(PANEL_TITLES[kind])
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", fontsize=8, ncols=min(len(methods), 6))
    return save(fig, out_dir, "improvement")


def seed_band(curves: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean, min and max over seeds of curves y(x), on the union of their x values up to where the
    shortest one ends (each curve linearly interpolated there)."""
    curves = [(x, y) for x, y in curves if len(x)]
    end = min(x[-1] for x, _ in curves)
    grid = np.unique(np.concatenate([x[x <= end] for x, _ in curves]))
    values = np.vstack([np.interp(grid, x, y) for x, y in curves])
    return grid, values.mean(axis=0), values.min(axis=0), values.max(axis=0)


def _curve(history: pd.DataFrame, x: str, y: str) -> tuple[np.ndarray, np.ndarray]:
    rows = history[[x, y]].dropna()
    rows = rows[np.isfinite(rows[y]) & (rows[y] > 0)]
    return rows[x].to_numpy(float), rows[y].to_numpy(float)


def _draw(ax, histories: dict[str, list[pd.DataFrame]], x: str, y: str) -> bool:
    drawn = False
    for method, frames in histories.items():
        curves = [c for c in (_curve(h, x, y) for h in frames if y in h) if len(c[0])]
        if not curves:
            continue
        grid, mean, low, high = seed_band(curves)
        line, = ax.plot(grid, mean, label=f"{method} ({len(curves)} seed{'s' * (len(curves) > 1)})", linewidth=1.2)
        if len(curves) > 1:
            ax.fill_between(grid, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        drawn = True
    if drawn:
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    return drawn


def read_histories(runs: pd.DataFrame) -> dict[str, list[pd.DataFrame]]:
    """history.csv of each included run, by method."""
    histories: dict[str, list[pd.DataFrame]] = {}
    for _, run in runs[runs["included"]].iterrows():
        path = Path(run["run_dir"]) / records.HISTORY
        if path.is_file():
            histories.setdefault(run["method"], []).append(pd.read_csv(path))
    return histories


def error_curves(setting: dict, histories: dict[str, list[pd.DataFrame]], out_dir: Path) -> list[Path]:
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    axes = fig.subplots(1, 2)
    drawn = [_draw(ax, histories, x, "test_mse") for ax, x in zip(axes, ("iteration", "seconds"))]
    if not any(drawn):
        return []
    axes[0].set_xlabel("iteration")
    axes[1].set_xlabel("training time [s]")
    axes[0].set_ylabel("test MSE")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{setting_label(setting, short=True)}: test MSE (mean over seeds, band: range)")
    return save(fig, out_dir, f"test_mse_{file_label(setting)}")


def loss_curves(setting: dict, histories: dict[str, list[pd.DataFrame]], out_dir: Path) -> list[Path]:
    names = sorted({c for frames in histories.values() for h in frames for c in h.columns if c.startswith("loss_")})
    if not names:
        return []
    fig = Figure(figsize=(4 * len(names), 3.6), layout="constrained")
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names):
        _draw(ax, histories, "iteration", name)
        ax.set_title(name.removeprefix("loss_") + " loss")
        ax.set_xlabel("iteration")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{setting_label(setting, short=True)}: losses (mean over seeds, band: range)")
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


def best_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The included run with the lowest final test MSE, per problem."""
    included = runs[runs["included"]]
    return included.loc[included.groupby("problem")["test_mse"].idxmin()]


def draw_all(runs: pd.DataFrame, summary: pd.DataFrame, out_dir: Path, notes: list[str]) -> list[Path]:
    """Every figure of the report into ``out_dir``; appends to ``notes`` what could not be drawn."""
    paths = improvement_bars(summary, out_dir)
    if not paths:
        notes.append("No improvement over Adam could be computed, so there is no improvement figure.")
    for key, group in runs[runs["included"]].groupby(SETTING):
        setting = dict(zip(SETTING, key))
        histories = read_histories(group)
        paths += error_curves(setting, histories, out_dir) + loss_curves(setting, histories, out_dir)
        paths += conflict_figure(setting_label(setting, short=True), histories, out_dir,
                                 f"conflict_{file_label(setting)}")
    if field_plotter() is None:
        notes.append(f"Field figures skipped: {FIELD_PLOTTER[0]}.{FIELD_PLOTTER[1]} is not available.")
    else:
        for _, run in best_runs(runs).iterrows():
            paths += field_figure(Path(run["run_dir"]), out_dir, f"fields_{run['problem']}", notes)
    return paths
