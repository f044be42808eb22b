"""The tables of a report, for one error metric E (``--metric``: each run's final value).

A *setting* is problem × size × n_losses × budget (kind and amount) × variant; within it runs
differ by method and seed. Per setting and method (the formulas are in :mod:`pinnbench.report.stats`
and in :data:`ERRORS_NOTE`, :data:`VERSUS_NOTE`):

- over the seeds of its included runs (completed, finite E): n_seeds, mean, std, median, IQM,
  min, max; the paper's improvement over Adam with an independent bootstrap interval;
- over the *seed pairs* with Adam (the seeds both have, a diverged run's E = +inf): the median
  log10(E_Adam / E) and its quartiles, P(E < E_Adam) with a bootstrap interval over pairs, and the
  Wilcoxon signed-rank p-value.

Across settings: mean ranks of the median errors per budget kind (:func:`rank_table`). Time to
target: :func:`times_to_target` and :func:`target_table`. Any two methods of a setting, seed by seed:
:func:`pairs_table`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import permutations

import numpy as np
import pandas as pd
from tabulate import tabulate

from pinnbench.report import stats
from pinnbench.report.collect import ADAM_TIME, DEFAULT_METRIC, DIVERGED, SETTING, variant_tag

BASELINE = "adam"  # the method every other is compared with, unless ``--baseline`` names another
N_RESAMPLES, CI_SEED, CI_LEVEL = 10_000, 0, stats.CI_LEVEL
ALPHA = 0.05

SUMMARY_COLUMNS = [*SETTING, "method", "metric", "n_seeds", "mean", "std", "median", "iqm", "min", "max",
                   "improvement_over_adam_percent", "ci_low", "ci_high", "n_pairs", "median_log10_ratio",
                   "log10_ratio_q25", "log10_ratio_q75", "p_improve", "p_improve_low", "p_improve_high",
                   "wilcoxon_p", "ms_per_iteration", "iterations", "n_diverged", "n_excluded"]

ERRORS_NOTE = (
    "E is each run's final {metric}. Over the seeds of a method's included runs (completed, finite E): mean ± "
    "population std (ddof = 0, as the paper; empty for one seed), median, IQM = interquartile mean "
    "(scipy.stats.trim_mean(E, 0.25): the mean after dropping ⌊n/4⌋ seeds at each end, the plain mean below 4 "
    "seeds), min and max. A diverged run is left out of these and counted in n_diverged; n_excluded counts every "
    "run left out (diverged, failed, unfinished, or without E). ms_per_iteration, iterations: means over seeds."
)
VERSUS_NOTE = """\
Adam is taken from the same setting.
- improvement_over_adam_percent = (mean E_Adam − mean E) / mean E_Adam × 100 on seed means (the
  paper's); [ci_low, ci_high]: {level:.0%} percentile-bootstrap interval ({n} resamples of the method's
  seeds and of Adam's, drawn independently, numpy default_rng({seed})); empty below 2 seeds on a side.
- The other columns use seed pairs: a seed fixes the initial network and all collocation points, so
  the method's run and Adam's with the same seed form a pair. Only seeds both have are paired; a
  diverged run's E counts as +inf (worse than any finished run, tied with another diverged one).
- median log10(E_Adam/E) = median over pairs of log10(E_Adam / E) (> 0: lower error than Adam; +1:
  10× lower; ×f = 10^median); its quartiles are log10_ratio_q25/q75 in summary.csv.
- P(E < E_Adam) = share of pairs where the method's error is lower, a tie counting 1/2; [CI]:
  {level:.0%} percentile-bootstrap interval over pairs ({n} resamples of whole pairs, default_rng({seed}));
  empty below 2 pairs.
- wilcoxon_p: two-sided Wilcoxon signed-rank test (scipy.stats.wilcoxon) on the paired log errors,
  d = log10 E_Adam − log10 E, zero differences dropped; empty below {min_pairs} pairs. With n pairs no
  p-value is below 2/2^n: 0.0625 for 5 pairs, so 6 or more are needed to reach 5 %."""
RANKS_NOTE = (
    "Per setting the methods are ranked by their median E over seeds (1 = lowest; ties share the average rank; a "
    "diverged run's E = +inf); mean_rank is the mean over the settings of that budget kind where the method ran "
    "(n_settings of n_settings_budget)."
)
TARGET_NOTE = (
    "Target per setting: {source}. A run reaches it at the first row of its history.csv where E is evaluated "
    "and ≤ target; iterations and training seconds (the clock paused while evaluating) of that row. Over a "
    "method's included and diverged runs: reached = share of seeds that reach the target; median iterations and "
    "seconds to target count a seed that never reaches it as +inf (so inf when fewer than half reach it); "
    "speedup_vs_adam = Adam's reference seconds / the method's median seconds to target, where Adam's "
    "reference is where it ends (the median of its training seconds) when the target is its median final E, "
    "and its median seconds to target when the target is given (none where fewer than half its seeds reach it). A method whose median run never reaches the target shows \"never\" (0 in the CSV)."
)


@dataclass
class Summary:
    """The summary table and the notes explaining its empty cells."""

    table: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def _budget_text(row) -> str:
    if row["budget"] == "iterations":
        return f"{row['budget_amount']:g} it"
    return "Adam's time" if row["budget_amount"] == ADAM_TIME else f"{row['budget_amount']:g} s"


def baseline_name(baseline: str = BASELINE) -> str:
    """How the tables' headings and notes name the baseline: ``Adam``, or the method's label."""
    return "Adam" if baseline == BASELINE else baseline


def setting_label(row, short: bool = False) -> str:
    """``burgers-cpu n=3 200 it`` and the variant, if any, in full or (``short``) as the hash that
    ends its run directories' names: one setting in a note or a figure."""
    text = f"{row['problem']}-{row['size']} n={row['n_losses']} {_budget_text(row)}"
    if not row["variant"]:
        return text
    return f"{text} [{variant_tag(row['variant']) if short else row['variant']}]"


def comparison_errors(runs: pd.DataFrame, metric: str = DEFAULT_METRIC) -> pd.Series:
    """E per run for comparisons: ``metric`` for included runs, +inf for diverged ones, NaN else."""
    return runs[metric].where(runs["included"], np.where(runs["status"].eq(DIVERGED), np.inf, np.nan))


def seed_errors(group: pd.DataFrame) -> pd.Series:
    """E by seed (column ``error``) of the runs that finished or diverged; a duplicated seed keeps its
    first run."""
    kept = group[group["error"].notna()].drop_duplicates("seed")
    return pd.Series(kept["error"].to_numpy(float), index=kept["seed"].to_numpy())


def _describe(group: pd.DataFrame, metric: str) -> dict:
    kept = group[group["included"]]
    d = stats.describe(kept[metric])
    return dict(n_seeds=d.pop("n"), **d, ms_per_iteration=kept["ms_per_iteration"].mean(),
                iterations=kept["iterations"].astype(float).mean(),
                n_diverged=int(group["status"].eq(DIVERGED).sum()), n_excluded=len(group) - len(kept))


def versus_adam(group: pd.DataFrame, adam: pd.DataFrame, metric: str, n_resamples: int, seed: int) -> dict:
    """The comparison columns of one method's row against Adam's runs of the same setting."""
    out: dict = {}
    kept, kept_adam = group.loc[group["included"], metric], adam.loc[adam["included"], metric]
    if len(kept) and len(kept_adam):
        out["improvement_over_adam_percent"] = stats.improvement(kept_adam.mean(), kept.mean())
        if min(len(kept), len(kept_adam)) >= 2:
            out["ci_low"], out["ci_high"] = stats.bootstrap_improvement(kept, kept_adam, n_resamples, seed)
    a, m = paired_errors(seed_errors(adam), seed_errors(group))
    if len(a):
        pair = paired(a, m)
        out.update(pair, p_improve=pair.pop("p_better"))
        if len(a) >= 2:
            out["p_improve_low"], out["p_improve_high"] = stats.bootstrap_prob_improvement(a, m, n_resamples, seed)
    return out


def paired_errors(theirs: pd.Series, mine: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The errors by seed (:func:`seed_errors`) of two methods over the seeds both have."""
    seeds = mine.index.intersection(theirs.index)
    return theirs[seeds].to_numpy(), mine[seeds].to_numpy()


def paired(theirs: np.ndarray, mine: np.ndarray) -> dict:
    """One method against another over seed pairs: n_pairs, the quartiles of log10(E_theirs / E_mine),
    p_better = P(E_mine < E_theirs) and the Wilcoxon p (:mod:`pinnbench.report.stats`)."""
    q25, median, q75 = stats.quartiles(stats.log_ratios(theirs, mine))
    return dict(n_pairs=len(mine), median_log10_ratio=median, log10_ratio_q25=q25, log10_ratio_q75=q75,
                p_better=stats.prob_improvement(theirs, mine), wilcoxon_p=stats.wilcoxon_p(theirs, mine))


def _notes(label: str, group: pd.DataFrame, adam: pd.DataFrame, row: dict, baseline: str = BASELINE) -> list[str]:
    """Why cells of this row are empty, and what was left out (``adam``: the baseline's runs)."""
    notes = []
    kept = group[group["included"]]
    if kept["seed"].duplicated().any():
        notes.append(f"{label}: seeds {sorted(kept['seed'][kept['seed'].duplicated()].unique().tolist())} occur in "
                     "more than one run; each run counts in the means, the first one in the seed pairs.")
    if kept["device"].nunique() > 1:
        notes.append(f"{label}: runs on different devices ({', '.join(sorted(kept['device'].unique()))}); "
                     "times are mixed.")
    diverged = group.loc[group["status"].eq(DIVERGED), "seed"]
    if len(diverged):
        notes.append(f"{label}: {len(diverged)} run(s) diverged (seeds {sorted(diverged.dropna().tolist())}): left "
                     "out of mean, std, median, IQM, min and max; E = +inf in pairs, ranks and profiles.")
    if row["n_seeds"] == 0 and not len(diverged):
        return notes + [f"{label}: no completed run ({row['n_excluded']} excluded); no statistics."]
    if row["method"] == baseline:
        return notes
    name = baseline_name(baseline)
    if not len(seed_errors(adam)):
        return notes + [f"{label}: no completed or diverged {name} run in this setting; no comparison with {name}."]
    if not adam["included"].any():
        notes.append(f"{label}: every {name} run diverged; no improvement on seed means, and {name}'s E = +inf in "
                     "the pairs.")
    unpaired = sorted(set(seed_errors(group).index) - set(seed_errors(adam).index))
    if unpaired:
        notes.append(f"{label}: seed(s) {unpaired} have no finished or diverged {name} run; paired over the "
                     f"{row.get('n_pairs', 0)} seed(s) both have.")
    return notes


def summarize(runs: pd.DataFrame, metric: str = DEFAULT_METRIC, n_resamples: int = N_RESAMPLES,
              seed: int = CI_SEED, baseline: str = BASELINE) -> Summary:
    """Group ``runs`` (from :func:`~pinnbench.report.collect.collect_runs`) over seeds and compare
    each method with the ``baseline`` (Adam); one row per setting and method, :data:`SUMMARY_COLUMNS`
    (whose ``adam`` columns hold the comparison with the baseline)."""
    notes: list[str] = []
    keyed = runs.dropna(subset=[k for k in SETTING + ["method"] if k != "variant"])
    keyed = keyed.assign(error=comparison_errors(keyed, metric))
    rows = []
    for key, setting in keyed.groupby(SETTING, sort=True):
        adam = setting[setting["method"] == baseline]
        for method, group in setting.groupby("method", sort=True):
            row = {**dict(zip(SETTING, key)), "method": method, "metric": metric, **_describe(group, metric)}
            if method == baseline and row["n_seeds"]:
                row["improvement_over_adam_percent"] = 0.0
            elif method != baseline:
                row.update(versus_adam(group, adam, metric, n_resamples, seed))
            notes += _notes(f"{setting_label(row)} {method}", group, adam, row, baseline)
            rows.append(row)
    table = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    table[SUMMARY_COLUMNS[len(SETTING) + 2:]] = table[SUMMARY_COLUMNS[len(SETTING) + 2:]].astype(float)
    return Summary(table, notes)


PAIRS_COLUMNS = [*SETTING, "method", "versus", "n_pairs", "median_log10_ratio", "log10_ratio_q25", "log10_ratio_q75",
                 "p_better", "wilcoxon_p"]

PAIRS_NOTE = (
    "pairs.csv compares every two methods of a setting seed by seed, as the comparison with Adam does, over the seeds "
    "both ran (a diverged run's E = +inf): per ordered pair (method, versus), the quartiles of log10(E_versus / "
    "E_method) (> 0: the method's error is lower), P(E_method < E_versus) (a tie counts ½), and the two-sided "
    "Wilcoxon signed-rank p on those log ratios (empty below {min_pairs} pairs). Each pair appears in both orders."
)


def pairs_table(runs: pd.DataFrame, metric: str = DEFAULT_METRIC) -> pd.DataFrame:
    """Every ordered pair of methods within each setting, compared over their common seeds
    (:data:`PAIRS_NOTE`); one row per setting, method and versus, :data:`PAIRS_COLUMNS`."""
    keyed = runs.dropna(subset=[k for k in SETTING + ["method"] if k != "variant"])
    keyed = keyed.assign(error=comparison_errors(keyed, metric))
    rows = []
    for key, setting in keyed.groupby(SETTING, sort=True):
        errors = {method: seed_errors(group) for method, group in setting.groupby("method", sort=True)}
        for method, versus in permutations(errors, 2):
            theirs, mine = paired_errors(errors[versus], errors[method])
            if len(mine):
                rows.append({**dict(zip(SETTING, key)), "method": method, "versus": versus, **paired(theirs, mine)})
    return pd.DataFrame(rows, columns=PAIRS_COLUMNS)


def significance_lines(table: pd.DataFrame, alpha: float = ALPHA, baseline: str = BASELINE) -> list[str]:
    """One line per setting: the methods better than the baseline (Adam) by the Wilcoxon test at level
    ``alpha`` (direction: the sign of the median log ratio), those worse, those not different, those
    untested."""
    lines, name = [], baseline_name(baseline)
    for _, block in table[table["method"] != baseline].groupby(SETTING, sort=True):
        p, ratio = block["wilcoxon_p"], block["median_log10_ratio"]
        groups = {f"better than {name}": (p < alpha) & (ratio > 0), f"worse than {name}": (p < alpha) & (ratio < 0),
                  "no significant difference": p.notna() & ~((p < alpha) & (ratio != 0))}
        parts = [f"{name}: " + (", ".join(f"{m} (p = {q:.3g})" for m, q in zip(block["method"][mask], p[mask]))
                                or "none") for name, mask in groups.items()] if p.notna().any() else []
        untested = block["method"][p.isna()].tolist()
        if untested:
            parts.append(f"not tested, fewer than {stats.MIN_WILCOXON_PAIRS} seed pairs with {name}: "
                         + ", ".join(untested))
        lines.append(f"- {setting_label(block.iloc[0], short=True)}: " + "; ".join(parts) + ".")
    return lines


def setting_medians(runs: pd.DataFrame, metric: str = DEFAULT_METRIC) -> pd.DataFrame:
    """Median E over seeds (diverged = +inf), rows: settings, columns: methods."""
    keyed = runs.assign(error=comparison_errors(runs, metric)).dropna(subset=["error", "method", "budget"])
    return keyed.pivot_table(index=SETTING, columns="method", values="error", aggfunc="median", dropna=False) \
        .dropna(how="all").dropna(axis=1, how="all")


def rank_table(medians: pd.DataFrame) -> pd.DataFrame:
    """Per budget kind and method: mean rank over the settings, n_settings, n_settings_budget."""
    parts = []
    for kind, block in medians.groupby(level="budget", sort=True):
        block = block.dropna(axis=1, how="all")
        ranks = stats.mean_ranks(block).rename_axis("method").reset_index()
        parts.append(ranks.assign(budget=kind, n_settings_budget=len(block)))
    columns = ["budget", "method", "mean_rank", "n_settings", "n_settings_budget"]
    return pd.concat(parts)[columns].sort_values(["budget", "mean_rank", "method"], ignore_index=True) \
        if parts else pd.DataFrame(columns=columns)


def common_rank_table(medians: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """{budget kind: mean ranks over only the settings that every method of that kind ran}, for the
    kinds where methods ran different numbers of settings (their :func:`rank_table` means average over
    different settings, so they do not compare); an empty frame where no setting has every method."""
    common = {}
    for kind, block in medians.groupby(level="budget", sort=True):
        block = block.dropna(axis=1, how="all")
        if block.notna().all().all():
            continue
        shared = block.dropna(axis=0, how="any")
        ranks = stats.mean_ranks(shared).rename_axis("method").reset_index() if len(shared) else pd.DataFrame()
        common[kind] = ranks.sort_values(["mean_rank", "method"], ignore_index=True) if len(ranks) else ranks
    return common


SHORT_BUDGET = 5
"""A budget below 1/SHORT_BUDGET of the problem size's default iterations gets a warning."""


def short_budget_notes(runs: pd.DataFrame, default_iterations) -> list[str]:
    """A warning per (problem, size, iterations) budget far below the size's default,
    ``default_iterations(problem, size)`` (None where unknown): short runs can rank methods otherwise."""
    notes = []
    short = runs[runs["budget"].eq("iterations")].dropna(subset=["problem", "size", "budget_amount"])
    for (problem, size, amount), _ in short.groupby(["problem", "size", "budget_amount"], sort=True):
        default = default_iterations(problem, size)
        if default and amount * SHORT_BUDGET < default:
            notes.append(f"warning: {problem} at size {size} trained {amount:.0f} iterations, under 1/{SHORT_BUDGET} "
                         f"of the size's default ({default}); rankings after so few iterations can differ from "
                         f"those at the full budget, so treat them as a smoke test.")
    return notes


def cell(fmt: str, *values) -> str:
    return fmt.format(*values) if all(pd.notna(v) for v in values) else ""


def setting_view(table: pd.DataFrame) -> pd.DataFrame:
    """The setting as text columns: the budget as ``200 it`` / ``60 s``, the variant (as its hash,
    see :func:`variant_lines`) only when some row has one."""
    view = pd.DataFrame({k: table[k].astype(object) for k in ("problem", "size", "n_losses")})
    view["budget"] = [_budget_text(r) for _, r in table.iterrows()]
    if table["variant"].ne("").any():
        view["variant"] = table["variant"].map(variant_tag)
    if "method" in table:
        view["method"] = table["method"]
    return view


def variant_lines(table: pd.DataFrame) -> list[str]:
    """``- `dc018603`: lr=0.01``: what each variant hash in the tables stands for."""
    return [f"- `{variant_tag(v)}`: {v}" for v in sorted(set(table["variant"]) - {""})]


def errors_view(table: pd.DataFrame) -> pd.DataFrame:
    """The seed statistics of the summary as text cells, empty where undefined."""
    view = setting_view(table)
    view["n_seeds"] = table["n_seeds"].map("{:.0f}".format)
    view["mean ± std"] = [cell("{:.3e}", m) + cell(" ± {:.2e}", s) for m, s in zip(table["mean"], table["std"])]
    for column in ("median", "iqm", "min", "max"):
        view[column] = [cell("{:.3e}", v) for v in table[column]]
    view["ms_per_iteration"] = [cell("{:.2f}", v) for v in table["ms_per_iteration"]]
    view["iterations"] = [cell("{:.0f}", v) for v in table["iterations"]]
    view["n_diverged"] = table["n_diverged"].map("{:.0f}".format)
    view["n_excluded"] = table["n_excluded"].map("{:.0f}".format)
    return view


def versus_view(table: pd.DataFrame, baseline: str = BASELINE) -> pd.DataFrame:
    """The comparisons with the baseline (Adam) as text cells, empty where undefined."""
    view, name = setting_view(table), baseline_name(baseline)
    view["n_pairs"] = [cell("{:.0f}", v) for v in table["n_pairs"]]
    view["improvement % [CI]"] = [cell("{:+.1f}", v) + cell(" [{:.0f}, {:.0f}]", lo, hi) for v, lo, hi
                                  in zip(table["improvement_over_adam_percent"], table["ci_low"], table["ci_high"])]
    view[f"median log10(E_{name}/E)"] = [cell("{:+.2f} (×{:.3g})", r, 10.0 ** r) for r in table["median_log10_ratio"]]
    view[f"P(E < E_{name}) [CI]"] = [cell("{:.2f}", p) + cell(" [{:.2f}, {:.2f}]", lo, hi) for p, lo, hi
                                  in zip(table["p_improve"], table["p_improve_low"], table["p_improve_high"])]
    view["wilcoxon_p"] = [cell("{:.3g}", p) for p in table["wilcoxon_p"]]
    return view


PAPER_NOTE = (
    "The paper's comparison, one table per budget kind: a column per setting (problem-size, grouping n, budget), a "
    "row per method. A cell holds the improvement over Adam in %, (mean E_Adam − mean E) / mean E_Adam × 100 on "
    "seed means, and in brackets the seeds whose run has a lower E than Adam's run of the same seed, of the seed "
    "pairs (a tie counts 1/2). The first row holds Adam's median E. Methods are in the order of their mean rank "
    "for the budget kind (Ranks across settings); empty cells: the method did not run there, or has no Adam "
    "to compare with."
)


def _percent(value: float) -> str:
    """``+92``, ``-8``, ``+0`` (never ``-0``), or nothing."""
    return f"{int(round(value)):+d}" if pd.notna(value) and np.isfinite(value) else ""


def _seeds_better(p_improve: float, n_pairs: float) -> str:
    """``(3/3)``, ``(2.5/3)`` with a tie, or nothing without pairs."""
    if not (pd.notna(p_improve) and pd.notna(n_pairs) and n_pairs > 0):
        return ""
    return f"({p_improve * n_pairs:.3g}/{n_pairs:.0f})"


def paper_views(table: pd.DataFrame, ranks: pd.DataFrame | None = None,
                baseline: str = BASELINE) -> dict[str, pd.DataFrame]:
    """{budget kind: methods × settings}: improvement over the baseline (Adam) with the seeds better,
    ``+92 (3/3)``, below a row of its median E (:data:`PAPER_NOTE`); the methods ordered by ``ranks``."""
    views: dict[str, pd.DataFrame] = {}
    for kind, part in table.groupby("budget", sort=True):
        settings = part[SETTING].drop_duplicates()
        labels = [setting_label(s, short=True) for _, s in settings.iterrows()]
        keys = [tuple(s) for s in settings.itertuples(index=False)]
        rows = {(*r[SETTING], r["method"]): r for _, r in part.iterrows()}
        order = ranks[ranks["budget"] == kind].sort_values("mean_rank", kind="stable")["method"].tolist() \
            if ranks is not None and len(ranks) else []
        methods = [m for m in order if m != baseline] + sorted(set(part["method"]) - set(order) - {baseline})
        lines = [{"method": f"{baseline}: median E",
                  **{label: cell("{:.2e}", rows[(*key, baseline)]["median"]) if (*key, baseline) in rows else ""
                     for label, key in zip(labels, keys)}}]
        for method in methods:
            line = {"method": method}
            for label, key in zip(labels, keys):
                r = rows.get((*key, method))
                line[label] = "" if r is None else " ".join(filter(None, (
                    _percent(r["improvement_over_adam_percent"]), _seeds_better(r["p_improve"], r["n_pairs"]))))
            lines.append(line)
        views[kind] = pd.DataFrame(lines, columns=["method", *labels])
    return views


def ranks_view(ranks: pd.DataFrame) -> pd.DataFrame:
    view = ranks.astype(object)
    view["mean_rank"] = [f"{r:.2f}" for r in ranks["mean_rank"]]
    return view


def to_markdown(view: pd.DataFrame) -> str:
    return view.to_markdown(index=False, disable_numparse=True)


def to_latex(view: pd.DataFrame) -> str:
    return tabulate(view, headers="keys", tablefmt="latex_booktabs", showindex=False, disable_numparse=True)
