"""Figures across settings (PNG and PDF), a panel per budget kind unless said otherwise:

- ``improvement``: per setting and method, the median over seed pairs of log10(E_Adam / E) as a
  bar with the interquartile range of the pairs as a whisker, on a symmetric axis whose ticks read
  as factors and as the paper's percent (``×2 (+50 %)``, ``×1/2 (−100 %)``); with
  ``--improvement-style paper``, the paper's bars of (E_Adam − E) / E_Adam × 100 on seed means
  with the bootstrap interval;
- ``performance_profile``: per method the share of settings where its median error is within a
  factor τ of the best method's, against τ on a log axis (curves offset by less than 0.03 so that
  equal ones stay visible);
- ``time_to_target``: per setting, the share of a method's seeds that have reached the target by
  each training time.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pinnbench.report.collect import SETTING
from pinnbench.report.stats import performance_profile
from pinnbench.report.style import PANEL_TITLES, save
from pinnbench.report.tables import BASELINE, baseline_name, setting_label

IMPROVEMENT_STYLES = ("log", "paper")


def factor_ticks(limit: float) -> tuple[list[float], list[str]]:
    """Ticks of a log10(E_Adam / E) axis from −limit to limit: factors 1, 1.5, 2, 3, 5 (below 10×),
    1, 2, 5, 10, … (below 50×), else powers of ten, labelled ``×f`` and ``×1/f`` with the paper's
    percent (1 − E/E_Adam) × 100."""
    steps = (1, 1.5, 2, 3, 5) if limit < 1 else (1, 2, 5) if limit < math.log10(50) else (1,)
    factors = [s * 10 ** k for k in range(9) for s in steps if math.log10(s * 10 ** k) <= limit + 1e-9]
    ticks = sorted({sign * math.log10(f) for f in factors for sign in (1, -1)})
    labels = []
    for t in ticks:
        factor = 10 ** abs(t)
        text = f"×{factor:.3g}" if t >= 0 else f"×1/{factor:.3g}"
        labels.append(f"{text} ({(1 - 10 ** -t) * 100:+.4g} %)" if t else "×1 (0 %)")
    return ticks, labels


def _panels(data: pd.DataFrame, height: float):
    """The budget kinds present, their methods, and a figure with one row of axes per kind."""
    kinds = [k for k in PANEL_TITLES if (data["budget"] == k).any()]
    methods = sorted(data["method"].unique())
    most = max(data[data["budget"] == k].groupby(SETTING).ngroups for k in kinds)
    fig = Figure(figsize=(max(5.0, 2.0 + most * (0.6 + 0.25 * len(methods))), height * len(kinds)),
                 layout="constrained")
    return kinds, methods, fig, fig.subplots(len(kinds), 1, squeeze=False)[:, 0]


def _bars(ax, panel: pd.DataFrame, methods: list[str], colors: dict[str, str], value: str, low: str, high: str,
          limit: float | None = None) -> None:
    """Grouped bars of ``value`` per setting and method, whiskers from ``low`` to ``high``; values
    beyond ±``limit`` are cut there and hatched."""
    settings = panel[SETTING].drop_duplicates().reset_index(drop=True)
    width = 0.8 / len(methods)
    for j, method in enumerate(methods):
        rows = settings.merge(panel[panel["method"] == method], on=SETTING, how="left")
        values, lows, highs = (rows[c].to_numpy(float) for c in (value, low, high))
        if limit is not None:
            values, lows, highs = (np.clip(v, -limit, limit) for v in (values, lows, highs))
        err = np.abs(np.vstack([values - lows, highs - values]))
        x = np.arange(len(settings)) + (j - (len(methods) - 1) / 2) * width
        bars = ax.bar(x, values, width, label=method, color=colors.get(method),
                      yerr=err if np.isfinite(err).any() else None, capsize=2, error_kw={"elinewidth": 0.8})
        for bar, raw in zip(bars, rows[value].to_numpy(float)):
            if limit is not None and abs(raw) > limit:
                bar.set_hatch("//")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(np.arange(len(settings)), [setting_label(s, short=True).replace(" ", "\n", 2)
                                             for _, s in settings.iterrows()], fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def improvement_figure(summary: pd.DataFrame, out_dir: Path, colors: dict[str, str],
                       style: str = "log", baseline: str = BASELINE) -> list[Path]:
    """The improvement over the baseline (Adam), one panel per budget kind; nothing when no row has one."""
    value = "median_log10_ratio" if style == "log" else "improvement_over_adam_percent"
    data, name = summary[(summary["method"] != baseline) & summary[value].notna()], baseline_name(baseline)
    if data.empty:
        return []
    kinds, methods, fig, axes = _panels(data, 3.8)
    columns = ["log10_ratio_q25", "log10_ratio_q75"] if style == "log" else ["ci_low", "ci_high"]
    spread = data[[value, *columns]].to_numpy(float)
    limit = max(math.log10(3), 1.15 * np.abs(spread[np.isfinite(spread)]).max(initial=0)) if style == "log" else None
    for ax, kind in zip(axes, kinds):
        _bars(ax, data[data["budget"] == kind], methods, colors, value, *columns, limit=limit)
        ax.set_title(PANEL_TITLES[kind])
        if style == "log":
            ax.set_ylim(-limit, limit)
            ax.set_yticks(*factor_ticks(limit), fontsize=8)
            ax.set_ylabel(f"E_{name} / E, median over seed pairs\n(whisker: interquartile range)", fontsize=9)
        else:
            ax.set_ylabel(f"improvement over {name} [%]\n(whisker: bootstrap 95 % interval)", fontsize=9)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", fontsize=8, ncols=min(len(methods), 6))
    return save(fig, out_dir, "improvement")


def profile_figure(medians: pd.DataFrame, out_dir: Path, colors: dict[str, str]) -> list[Path]:
    """Performance profiles of the settings' median errors, one panel per budget kind."""
    kinds = [k for k in PANEL_TITLES if k in set(medians.index.get_level_values("budget"))] if len(medians) else []
    if not kinds:
        return []
    fig = Figure(figsize=(6.5, 3.4 * len(kinds)), layout="constrained")
    axes = fig.subplots(len(kinds), 1, squeeze=False)[:, 0]
    for ax, kind in zip(axes, kinds):
        block = medians.xs(kind, level="budget", drop_level=False).dropna(axis=1, how="all")
        ratios = block.div(block.min(axis=1), axis=0).to_numpy(float)
        top = max(10.0, 1.5 * np.nanmax(ratios[np.isfinite(ratios)], initial=1.0))
        taus = np.geomspace(1.0, top, 400)
        profile = performance_profile(block, taus)
        for j, method in enumerate(profile.columns):  # a small offset keeps overlapping curves apart
            ax.step(taus, profile[method] + 0.008 * (j - (len(profile.columns) - 1) / 2), where="post", label=method,
                    color=colors.get(method), linewidth=1.4)
        ax.set_xscale("log")
        ax.set_xlim(1.0, top)
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel("τ (median error ≤ τ × the best method's median error)")
        ax.set_ylabel("share of settings")
        ax.set_title(f"{PANEL_TITLES[kind]}: {len(block)} setting{'s' * (len(block) > 1)}")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="lower right")
    return save(fig, out_dir, "performance_profile")


def target_figure(timed: pd.DataFrame, out_dir: Path, colors: dict[str, str]) -> list[Path]:
    """Per setting: the share of each method's seeds that reached the target by each training time."""
    known = timed.dropna(subset=["seconds_to_target", "method", "budget"])
    settings = list(known.groupby(SETTING, sort=True))
    if not settings:
        return []
    cols = min(3, len(settings))
    rows = math.ceil(len(settings) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (key, runs) in zip(axes, settings):
        end = runs["seconds"].max()
        for method, group in runs.groupby("method", sort=True):
            times = np.sort(group["seconds_to_target"].to_numpy(float))
            times = times[np.isfinite(times)]
            shares = np.arange(len(times) + 1) / len(group)
            ax.step(np.r_[0.0, times, end], np.r_[shares, shares[-1]], where="post", label=method,
                    color=colors.get(method), linewidth=1.4)
        ax.set_title(f"{setting_label(dict(zip(SETTING, key)), short=True)}\ntarget {runs['target'].iloc[0]:.2e}",
                     fontsize=9)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("training time [s]")
        ax.grid(alpha=0.3)
    for ax in axes[len(settings):]:
        ax.set_visible(False)
    axes[0].set_ylabel("share of seeds at target")
    axes[0].legend(fontsize=8)
    return save(fig, out_dir, "time_to_target")
