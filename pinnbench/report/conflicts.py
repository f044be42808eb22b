"""Gradient conflict over training, from the diagnostics columns of history.csv.

A run trained with ``diagnostics.conflict_every=N`` logs, every N iterations, the pairwise cosines
``cos_<a>_<b>`` of the losses' gradients and the cosines ``cos_update_<a>`` between the method's
update and each loss's gradient. An iteration *conflicts* when its update has a negative cosine
with some loss's gradient: to first order that step increases the loss.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pinnbench.report.collect import SETTING
from pinnbench.report.stats import seed_band
from pinnbench.report.style import save


def update_columns(history: pd.DataFrame) -> list[str]:
    return [c for c in history.columns if c.startswith("cos_update_")]


def pair_columns(history: pd.DataFrame) -> list[str]:
    return [c for c in history.columns if c.startswith("cos_") and not c.startswith("cos_update_")]


def conflict_fraction(history: pd.DataFrame) -> tuple[float, int]:
    """(fraction of diagnosed iterations whose update conflicts with some loss, number diagnosed)."""
    columns = update_columns(history)
    if not columns:
        return float("nan"), 0
    rows = history[columns].dropna()
    if rows.empty:
        return float("nan"), 0
    return float((rows.min(axis=1) < 0).mean()), len(rows)


def conflict_table(runs: pd.DataFrame, histories: dict[tuple, dict[str, list[pd.DataFrame]]]) -> pd.DataFrame:
    """Per setting and method: the conflict fraction's mean, min and max over seeds."""
    rows = []
    for key, by_method in histories.items():
        for method, frames in by_method.items():
            fractions = [f for f, n in map(conflict_fraction, frames) if n]
            if fractions:
                rows.append({**dict(zip(SETTING, key)), "method": method, "n_seeds": len(fractions),
                             "conflict_fraction_mean": float(np.mean(fractions)),
                             "conflict_fraction_min": float(np.min(fractions)),
                             "conflict_fraction_max": float(np.max(fractions))})
    return pd.DataFrame(rows)


def _band(ax, frames: list[pd.DataFrame], column: str, label: str) -> None:
    curves = []
    for h in frames:
        if column in h:
            rows = h[["iteration", column]].dropna()
            if len(rows):
                curves.append((rows["iteration"].to_numpy(float), rows[column].to_numpy(float)))
    if not curves:
        return
    grid, median, low, high = seed_band(curves)
    line, = ax.plot(grid, median, label=label, linewidth=1.1)
    if len(curves) > 1:
        ax.fill_between(grid, low, high, color=line.get_color(), alpha=0.2, linewidth=0)


def conflict_figure(title: str, by_method: dict[str, list[pd.DataFrame]], out_dir: Path, name: str) -> list[Path]:
    """One row per method: pairwise gradient cosines (left) and update-vs-loss cosines (right),
    median over seeds with the interquartile range as a band; the conflict fraction (mean over seeds)
    in each row's title."""
    methods = [m for m, frames in by_method.items() if any(update_columns(h) for h in frames)]
    if not methods:
        return []
    fig = Figure(figsize=(10, 2.4 * len(methods)), layout="constrained")
    axes = fig.subplots(len(methods), 2, squeeze=False, sharex=True)
    for row, method in zip(axes, methods):
        frames = by_method[method]
        for column in pair_columns(frames[0]):
            _band(row[0], frames, column, column.removeprefix("cos_").replace("_", " · ", 1))
        for column in update_columns(frames[0]):
            _band(row[1], frames, column, column.removeprefix("cos_update_"))
        fractions = [f for f, n in map(conflict_fraction, frames) if n]
        row[0].set_title(f"{method}: cos(g_a, g_b)", fontsize=9)
        row[1].set_title(f"{method}: cos(update, g_a); conflicting iterations "
                         f"{100 * np.mean(fractions):.1f} %", fontsize=9)
        for ax in row:
            ax.axhline(0, color="black", linewidth=0.6)
            ax.set_ylim(-1.05, 1.05)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="lower right")
    for ax in axes[-1]:
        ax.set_xlabel("iteration")
    fig.suptitle(f"{title}: gradient conflict (median over seeds, band: interquartile range)")
    return save(fig, out_dir, name)
