"""Time to target: when each run first reaches an error target (AlgoPerf's measure of speed).

The target of a setting is given per problem (``--target burgers=1e-3``, repeated) or, by default,
Adam's median final E over its included seeds in that setting. A run reaches it at the first row
of its history.csv where E is evaluated and ≤ target (:func:`~pinnbench.report.stats.time_to_target`).
"""

from __future__ import annotations

import math
from collections.abc import Collection

import numpy as np
import pandas as pd

from pinnbench.errors import ConfigError
from pinnbench.report import stats
from pinnbench.report.collect import SETTING
from pinnbench.report.tables import BASELINE, baseline_name, cell, setting_label, setting_view


TARGET_COLUMNS = [*SETTING, "method", "target", "n_runs", "n_reached", "reached", "median_iterations_to_target",
                  "median_seconds_to_target", "speedup_vs_adam"]


def parse_targets(items: list[str] | None) -> dict[str, float]:
    """``["burgers=1e-3", …]`` → ``{"burgers": 0.001}``; a bad item is a :class:`ConfigError`."""
    targets = {}
    for item in items or []:
        problem, _, value = item.partition("=")
        try:
            target = float(value)
        except ValueError:
            target = math.nan
        if not problem or not (target > 0 and math.isfinite(target)):
            raise ConfigError(f"--target {item}: expected PROBLEM=VALUE with a positive error, e.g. burgers=1e-3.")
        targets[problem] = target
    return targets


def setting_targets(runs: pd.DataFrame, metric: str, given: dict[str, float],
                    baseline: str = BASELINE) -> tuple[dict[tuple, float], list[str]]:
    """Target per setting (keyed by the :data:`SETTING` values): ``given[problem]`` or the baseline's
    (Adam's) median final E; with the notes on settings that have neither."""
    unknown = sorted(set(given) - set(runs["problem"].dropna()))
    if unknown:
        raise ConfigError(f"--target {', '.join(unknown)}: no run of that problem; problems: "
                          f"{', '.join(sorted(runs['problem'].dropna().unique()))}.")
    keyed = runs.dropna(subset=["problem", "method", "budget"])
    adam = keyed[keyed["included"] & keyed["method"].eq(baseline)].groupby(SETTING)[metric].median()
    targets, notes = {}, []
    for key, _ in keyed.groupby(SETTING, sort=True):
        setting = dict(zip(SETTING, key))
        targets[key] = given.get(setting["problem"], adam.get(key, np.nan))
        if np.isnan(targets[key]):
            notes.append(f"{setting_label(setting)}: no target (no completed {baseline_name(baseline)} run and no --target "
                         f"{setting['problem']}=VALUE); no time to target.")
    return targets, notes


def times_to_target(runs: pd.DataFrame, histories: dict[str, pd.DataFrame], metric: str,
                    targets: dict[tuple, float]) -> pd.DataFrame:
    """``runs`` with columns target, iterations_to_target, seconds_to_target: inf where a run never
    reaches its target, NaN where it cannot be told (no target, no history with the metric, or the
    run was neither included nor diverged)."""
    rows = []
    for _, run in runs.iterrows():
        target = targets.get(tuple(run[k] for k in SETTING), np.nan)
        history = histories.get(run["run_dir"])
        usable = (run["included"] or run["status"] == "diverged") and history is not None
        rows.append((target, *(stats.time_to_target(history, metric, target) if usable else (np.nan, np.nan))))
    return runs.assign(**dict(zip(["target", "iterations_to_target", "seconds_to_target"],
                                  np.array(rows, dtype=float).reshape(-1, 3).T)))


def target_table(timed: pd.DataFrame, given: Collection[str] = (), baseline: str = BASELINE) -> pd.DataFrame:
    """Per setting and method over its runs with a known time to target: target, n_runs, n_reached,
    reached = n_reached / n_runs, median iterations and seconds to target (never = +inf), and
    speedup_vs_adam = Adam's reference seconds / the method's median seconds to target.

    Adam's reference seconds are where Adam ends when the target is its median final E (the
    default): the median of its runs' training seconds. Its median seconds *to* that target would
    not do: the target is the median, so about half of Adam's seeds end above it and never reach
    it, and with an even number of seeds that median is +inf. For a problem in ``given`` (a
    ``--target``) they are Adam's median seconds to target; the speed-up is NaN where Adam's median
    run never reaches it. ``baseline``: the method in Adam's place."""
    known = timed.dropna(subset=["seconds_to_target", "method", "budget"])
    rows = []
    for key, group in known.groupby(SETTING + ["method"], sort=True):
        reached = np.isfinite(group["seconds_to_target"])
        rows.append({**dict(zip(SETTING + ["method"], key)), "target": group["target"].iloc[0],
                     "n_runs": len(group), "n_reached": int(reached.sum()), "reached": reached.mean(),
                     "median_iterations_to_target": group["iterations_to_target"].median(),
                     "median_seconds_to_target": group["seconds_to_target"].median()})
    table = pd.DataFrame(rows, columns=TARGET_COLUMNS)
    adam = known[known["method"] == baseline]
    to_target = adam.groupby(SETTING)["seconds_to_target"].median()
    ends = adam[adam["included"]].groupby(SETTING)["seconds"].median()
    reference = np.array([(to_target if r["problem"] in given else ends).get(tuple(r[k] for k in SETTING), np.nan)
                          for _, r in table.iterrows()], float)
    reference[np.isinf(reference)] = np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        table["speedup_vs_adam"] = reference / table["median_seconds_to_target"].to_numpy(float)
    default = table["method"].eq(baseline) & ~table["problem"].isin(list(given))
    table.loc[default, "speedup_vs_adam"] = 1.0  # its median run ends at the target: its reference itself
    return table


def target_view(table: pd.DataFrame, baseline: str = BASELINE) -> pd.DataFrame:
    """The time-to-target table as text cells (``inf``: fewer than half the seeds reach the target; the
    speed-up is then ``never``, where the CSV holds 0 = reference / inf)."""
    view = setting_view(table)
    view["target"] = [f"{t:.3e}" for t in table["target"]]
    view["reached"] = [f"{r}/{n}" for r, n in zip(table["n_reached"], table["n_runs"])]
    view["median iterations"] = [cell("{:.0f}", v) for v in table["median_iterations_to_target"]]
    view["median seconds"] = [cell("{:.2f}", v) for v in table["median_seconds_to_target"]]
    view[f"speed-up vs {baseline_name(baseline)}"] = [
        "never" if np.isinf(seconds) else cell("{:.2f}×", v)
        for v, seconds in zip(table["speedup_vs_adam"], table["median_seconds_to_target"].astype(float))]
    return view
