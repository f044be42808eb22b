"""The summary table: runs grouped by setting and method over seeds, improvement over Adam.

For every problem × size × n_losses × budget (kind and amount) × variant × method, over the seeds
of its *included* runs (completed, finite test MSE):

- ``mean_test_mse`` and ``std_test_mse``: mean and population standard deviation (ddof = 0, as the
  paper) of the final test MSE;
- ``improvement_over_adam_percent`` = (mean_Adam − mean_method) / mean_Adam × 100, with Adam's runs
  from the same setting (the paper's relative improvement);
- ``ci_low``, ``ci_high``: a 95 % percentile-bootstrap interval of that improvement. Protocol
  (:func:`bootstrap_improvement`): ``rng = numpy.random.default_rng(seed)`` (seed 0 by default,
  fresh for every row); draw ``n_resamples`` (10 000) resamples of the method's seed MSEs, then as
  many of Adam's, independently and with replacement (``rng.choice(mse, (n_resamples, n))``); the
  improvement of each pair of resample means; its 2.5 and 97.5 percentiles (``numpy.percentile``,
  linear). Left empty when either side has fewer than 2 seeds, and for Adam itself.

Runs that diverged, failed or did not finish are counted in ``n_excluded`` and kept out of every
mean; a row whose runs were all excluded stays in the table with ``n_seeds`` = 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tabulate import tabulate

from pinnbench.report.collect import SETTING, variant_tag

BASELINE = "adam"
N_RESAMPLES, CI_SEED, CI_LEVEL = 10_000, 0, 0.95

SUMMARY_COLUMNS = [*SETTING, "method", "n_seeds", "mean_test_mse", "std_test_mse", "improvement_over_adam_percent",
                   "ci_low", "ci_high", "ms_per_iteration", "iterations", "n_excluded"]

TABLE_NOTES = (
    "Final test MSE: mean ± std over seeds (population std, ddof = 0). "
    "improvement_over_adam_percent = (mean MSE of Adam − mean MSE of the method) / mean MSE of Adam × 100, "
    "Adam from the same problem, size, n_losses, budget and variant; positive is better than Adam. "
    f"ci_low, ci_high: {CI_LEVEL:.0%} percentile-bootstrap interval of the improvement ({N_RESAMPLES} resamples of "
    f"the method's seeds and of Adam's, drawn independently with numpy default_rng({CI_SEED})); empty with fewer "
    "than 2 seeds on either side. ms_per_iteration and iterations: means over seeds. "
    "Runs that diverged, failed or did not finish are not in the means; n_excluded counts them."
)


@dataclass
class Summary:
    """The summary table and the notes explaining its empty cells."""

    table: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def improvement(adam_mean: float, method_mean: float) -> float:
    return (adam_mean - method_mean) / adam_mean * 100.0


def bootstrap_improvement(method_mse, adam_mse, n_resamples: int = N_RESAMPLES, seed: int = CI_SEED,
                          level: float = CI_LEVEL) -> tuple[float, float]:
    """Percentile-bootstrap interval of the improvement over Adam, resampling the seeds of the
    method and of Adam independently (see the module docstring for the exact protocol)."""
    method_mse, adam_mse = np.asarray(method_mse, dtype=float), np.asarray(adam_mse, dtype=float)
    rng = np.random.default_rng(seed)
    method_means = rng.choice(method_mse, (n_resamples, method_mse.size)).mean(axis=1)
    adam_means = rng.choice(adam_mse, (n_resamples, adam_mse.size)).mean(axis=1)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(improvement(adam_means, method_means), [tail, 100 - tail])
    return float(low), float(high)


def _budget_text(row) -> str:
    return f"{row['budget_amount']:g} it" if row["budget"] == "iterations" else f"{row['budget_amount']:g} s"


def setting_label(row, short: bool = False) -> str:
    """``burgers-cpu n=3 200 it`` and the variant, if any, in full or (``short``) as the hash that
    ends its run directories' names: one setting in a note or a figure."""
    text = f"{row['problem']}-{row['size']} n={row['n_losses']} {_budget_text(row)}"
    if not row["variant"]:
        return text
    return f"{text} [{variant_tag(row['variant']) if short else row['variant']}]"


def summarize(runs: pd.DataFrame, n_resamples: int = N_RESAMPLES, seed: int = CI_SEED) -> Summary:
    """Group ``runs`` (from :func:`~pinnbench.report.collect.collect_runs`) over seeds."""
    notes: list[str] = []
    keyed = runs.dropna(subset=[k for k in SETTING + ["method"] if k != "variant"])
    fields = [c for c in runs.columns if c.startswith("mse_")]
    rows, samples = [], []
    for key, group in keyed.groupby(SETTING + ["method"], sort=True):
        kept = group[group["included"]]
        row = dict(zip(SETTING + ["method"], key))
        row.update(n_seeds=len(kept), mean_test_mse=kept["test_mse"].mean(), std_test_mse=kept["test_mse"].std(ddof=0),
                   ms_per_iteration=kept["ms_per_iteration"].mean(), iterations=kept["iterations"].astype(float).mean(),
                   n_excluded=len(group) - len(kept), **{f: kept[f].mean() for f in fields})
        rows.append(row)
        samples.append(kept["test_mse"].to_numpy())
        label = f"{setting_label(row)} {row['method']}"
        if kept["seed"].duplicated().any():
            notes.append(f"{label}: seeds {sorted(kept['seed'][kept['seed'].duplicated()].unique().tolist())} "
                         "occur in more than one run; each run counts as a sample.")
        if kept["device"].nunique() > 1:
            notes.append(f"{label}: runs on different devices ({', '.join(sorted(kept['device'].unique()))}); "
                         "times are mixed.")
    table = pd.DataFrame(rows, columns=SUMMARY_COLUMNS + fields)
    table["improvement_over_adam_percent"] = table["ci_low"] = table["ci_high"] = np.nan

    adam = {}
    for i, row in table.iterrows():
        if row["method"] == BASELINE and row["n_seeds"] > 0:
            adam.setdefault(tuple(row[k] for k in SETTING), []).append(i)
    for i, row in table.iterrows():
        label = f"{setting_label(row)} {row['method']}"
        if row["n_seeds"] == 0:
            notes.append(f"{label}: no completed run ({row['n_excluded']} excluded); no mean, no improvement.")
            continue
        matches = adam.get(tuple(row[k] for k in SETTING), [])
        if not matches:
            notes.append(f"{label}: no completed Adam run in this setting; improvement left empty.")
            continue
        if len(matches) > 1 and row["method"] != BASELINE:
            notes.append(f"{label}: {len(matches)} Adam groups in this setting (variants "
                         f"{', '.join(repr(table.at[j, 'variant']) for j in matches)}); improvement left empty.")
            continue
        a = matches[0] if row["method"] != BASELINE else i
        table.at[i, "improvement_over_adam_percent"] = improvement(table.at[a, "mean_test_mse"], row["mean_test_mse"])
        if row["method"] != BASELINE and min(len(samples[i]), len(samples[a])) >= 2:
            table.loc[i, ["ci_low", "ci_high"]] = bootstrap_improvement(samples[i], samples[a], n_resamples, seed)
    return Summary(table, notes)


FORMATS = {"mean_test_mse": "{:.3e}", "std_test_mse": "{:.2e}", "improvement_over_adam_percent": "{:.1f}",
           "ci_low": "{:.1f}", "ci_high": "{:.1f}", "ms_per_iteration": "{:.2f}", "iterations": "{:.0f}"}


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The summary as text cells (the budget as ``200 it`` / ``60 s``, numbers rounded, empty
    cells empty), the variant column only when some run has one."""
    shown = table.copy()
    shown["budget"] = [_budget_text(r) for _, r in table.iterrows()]
    columns = [c for c in SUMMARY_COLUMNS if c != "budget_amount" and (c != "variant" or table["variant"].ne("").any())]
    shown = shown[columns].astype(object)
    for column, fmt in FORMATS.items():
        shown[column] = [fmt.format(v) if pd.notna(v) else "" for v in table[column]]
    return shown


def to_markdown(table: pd.DataFrame) -> str:
    return display_table(table).to_markdown(index=False, disable_numparse=True)


def to_latex(table: pd.DataFrame) -> str:
    return tabulate(display_table(table), headers="keys", tablefmt="latex_booktabs", showindex=False,
                    disable_numparse=True)
