"""Gradient conflict over training, from the diagnostics columns of history.csv.

A run trained with ``diagnostics.conflict_every=N`` logs, every N iterations, the pairwise cosines
``cos_<a>_<b>`` of the losses' gradients and the cosines ``cos_update_<a>`` between the method's
update and each loss's gradient. An iteration *conflicts* when its update has a negative cosine
with some loss's gradient: to first order that step increases the loss. Runs recorded since the
step was diagnosed also log ``cos_step_<a>``, the same cosines of the step the optimiser took
(θ_t − θ_{t+1}), whose conflict is counted the same way. It also logs three numbers
of the gradient matrix G[k, d] (:mod:`pinnbench.diagnostics`): the alignment score ``alignment``
(2‖mean unit gradient‖² − 1), the numerical rank ``grad_rank`` and the condition number ``grad_cond``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pinnbench.report.collect import SETTING
from pinnbench.report.stats import seed_band
from pinnbench.report.style import save


UPDATE, STEP = "cos_update_", "cos_step_"


def update_columns(history: pd.DataFrame, prefix: str = UPDATE) -> list[str]:
    """The cosines of the method's update (``prefix`` :data:`UPDATE`) or of the optimiser's step
    (:data:`STEP`) with each loss's gradient."""
    return [c for c in history.columns if c.startswith(prefix)]


def pair_columns(history: pd.DataFrame) -> list[str]:
    return [c for c in history.columns if c.startswith("cos_") and not c.startswith((UPDATE, STEP))]


ALIGNMENT, RANK, COND = "alignment", "grad_rank", "grad_cond"


def gradient_summary(history: pd.DataFrame) -> dict[str, float]:
    """Over a run's diagnosed iterations: the mean alignment score, the mean numerical rank and the
    median condition number of G (NaN for what the history lacks)."""
    def column(name: str) -> pd.Series:
        return history[name].dropna() if name in history else pd.Series(dtype=float)

    alignment, rank, cond = column(ALIGNMENT), column(RANK), column(COND)
    return {ALIGNMENT: float(alignment.mean()) if len(alignment) else float("nan"),
            RANK: float(rank.mean()) if len(rank) else float("nan"),
            COND: float(cond.median()) if len(cond) else float("nan")}


def conflict_fraction(history: pd.DataFrame, prefix: str = UPDATE) -> tuple[float, int]:
    """(fraction of diagnosed iterations whose update, or with ``prefix`` :data:`STEP` whose step,
    conflicts with some loss, number diagnosed)."""
    columns = update_columns(history, prefix)
    if not columns:
        return float("nan"), 0
    rows = history[columns].dropna()
    if rows.empty:
        return float("nan"), 0
    return float((rows.min(axis=1) < 0).mean()), len(rows)


def conflict_table(runs: pd.DataFrame, histories: dict[tuple, dict[str, list[pd.DataFrame]]]) -> pd.DataFrame:
    """Per setting and method: the conflict fraction's mean, min and max over seeds; the alignment
    score and numerical rank of G (each run's mean over its diagnosed iterations, then the mean over
    seeds) and its condition number (each run's median, then the median over seeds). Where some run
    logs its steps' cosines, also the step's conflict fraction (mean, min, max over the seeds that
    log it; empty for a method none of whose runs does)."""
    rows = []
    for key, by_method in histories.items():
        for method, frames in by_method.items():
            measured = [(conflict_fraction(h), conflict_fraction(h, STEP), h) for h in frames]
            diagnosed = [(update[0], step, h) for update, step, h in measured if update[1]]
            if not diagnosed:
                continue
            fractions = [f for f, _, _ in diagnosed]
            summaries = pd.DataFrame([gradient_summary(h) for _, _, h in diagnosed])
            step = [f for _, (f, n), _ in diagnosed if n]
            rows.append({**dict(zip(SETTING, key)), "method": method, "n_seeds": len(fractions),
                         "conflict_fraction_mean": float(np.mean(fractions)),
                         "conflict_fraction_min": float(np.min(fractions)),
                         "conflict_fraction_max": float(np.max(fractions)),
                         "alignment_mean": float(summaries[ALIGNMENT].mean()),
                         "grad_rank_mean": float(summaries[RANK].mean()),
                         "grad_cond_median": float(summaries[COND].median()),
                         **{f"step_conflict_fraction_{name}": float(f(step)) if step else float("nan")
                            for name, f in (("mean", np.mean), ("min", np.min), ("max", np.max))}})
    table = pd.DataFrame(rows)
    step_columns = [c for c in table.columns if c.startswith("step_conflict_fraction_")]
    return table if table[step_columns].notna().any(axis=None) else table.drop(columns=step_columns)


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


def _log_condition(frames: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """The histories with ``log10_grad_cond`` = log10 of the condition number (NaN where infinite)."""
    out = []
    for h in frames:
        if COND in h:
            h = h.assign(log10_grad_cond=np.log10(h[COND].astype(float).replace(np.inf, np.nan)))
        out.append(h)
    return out


def conflict_figure(title: str, by_method: dict[str, list[pd.DataFrame]], out_dir: Path, name: str) -> list[Path]:
    """One row per method: pairwise gradient cosines, update-vs-loss cosines (and step-vs-loss where
    logged), and (for runs that log them) the alignment score and the condition number of G, median
    over seeds with the interquartile range as a band; the conflict fractions and the mean numerical
    rank of G in the titles."""
    methods = [m for m, frames in by_method.items() if any(update_columns(h) for h in frames)]
    if not methods:
        return []
    spectral = any(ALIGNMENT in h for m in methods for h in by_method[m])
    fig = Figure(figsize=(20 if spectral else 10, 2.4 * len(methods)), layout="constrained")
    axes = fig.subplots(len(methods), 4 if spectral else 2, squeeze=False, sharex=True)
    for row, method in zip(axes, methods):
        frames = by_method[method]
        for column in pair_columns(frames[0]):
            _band(row[0], frames, column, column.removeprefix("cos_").replace("_", " · ", 1))
        for column in update_columns(frames[0]):
            _band(row[1], frames, column, column.removeprefix(UPDATE))
        for column in update_columns(frames[0], STEP):
            _band(row[1], frames, column, "step " + column.removeprefix(STEP))
        fractions = [f for f, n in map(conflict_fraction, frames) if n]
        steps = [f for f, n in (conflict_fraction(h, STEP) for h in frames) if n]
        row[0].set_title(f"{method}: cos(g_a, g_b)", fontsize=9)
        row[1].set_title(f"{method}: cos(update, g_a){', cos(step, g_a)' if steps else ''}; conflicting iterations "
                         f"{100 * np.mean(fractions):.1f} %"
                         + (f", of the step {100 * np.mean(steps):.1f} %" if steps else ""), fontsize=9)
        for ax in row[:2]:
            ax.legend(fontsize=7, loc="lower right")
        if spectral:
            _band(row[2], frames, ALIGNMENT, "A")
            row[2].set_title(f"{method}: alignment score A = 2‖mean g_a/‖g_a‖‖² − 1", fontsize=9)
            _band(row[3], _log_condition(frames), "log10_grad_cond", "log10 cond(G)")
            ranks = [r for r in (gradient_summary(h)[RANK] for h in frames) if np.isfinite(r)]
            rank = f"{np.mean(ranks):.2f}" if ranks else "not logged"
            row[3].set_title(f"{method}: log10 condition number of G; mean numerical rank {rank}", fontsize=9)
            row[3].grid(alpha=0.3)
        for ax in row[:3]:
            ax.axhline(0, color="black", linewidth=0.6)
            ax.set_ylim(-1.05, 1.05)
            ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("iteration")
    fig.suptitle(f"{title}: gradient conflict (median over seeds, band: interquartile range)")
    return save(fig, out_dir, name)
