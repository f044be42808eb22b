"""Statistics of final errors over seeds and over seed pairs: pure functions of arrays.

Errors are non-negative and lower is better. A seed fixes the initial network and every
collocation point, so the runs of two methods with the same seed form a *pair*. In comparisons
(log ratios, probability of improvement, Wilcoxon, ranks, performance profiles) a diverged run's
error is +inf: worse than any finished run, equal to another diverged one.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

CI_LEVEL = 0.95
MIN_WILCOXON_PAIRS = 5
IQM_CUT = 0.25


def describe(errors) -> dict[str, float]:
    """n, mean, population std (ddof = 0, as the paper; NaN for one value), median, interquartile
    mean IQM = ``scipy.stats.trim_mean(e, 0.25)`` (the mean after cutting ⌊n/4⌋ values at each end;
    the plain mean below 4 values), min and max."""
    e = np.asarray(errors, dtype=float)
    if e.size == 0:
        return dict(n=0, mean=np.nan, std=np.nan, median=np.nan, iqm=np.nan, min=np.nan, max=np.nan)
    return dict(n=e.size, mean=e.mean(), std=e.std(ddof=0) if e.size > 1 else np.nan, median=np.median(e),
                iqm=stats.trim_mean(e, IQM_CUT), min=e.min(), max=e.max())


def improvement(adam_mean, method_mean):
    """The paper's relative improvement (E_Adam − E) / E_Adam × 100, on seed means."""
    return (adam_mean - method_mean) / adam_mean * 100.0


def percentile_interval(values: np.ndarray, level: float = CI_LEVEL) -> tuple[float, float]:
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_improvement(method_errors, adam_errors, n_resamples: int, seed: int,
                          level: float = CI_LEVEL) -> tuple[float, float]:
    """Percentile-bootstrap interval of :func:`improvement`: ``rng = default_rng(seed)`` draws
    ``n_resamples`` resamples of the method's seeds, then as many of Adam's, independently and with
    replacement; the interval holds the central ``level`` of the resampled improvements."""
    method_errors, adam_errors = np.asarray(method_errors, float), np.asarray(adam_errors, float)
    rng = np.random.default_rng(seed)
    method_means = rng.choice(method_errors, (n_resamples, method_errors.size)).mean(axis=1)
    adam_means = rng.choice(adam_errors, (n_resamples, adam_errors.size)).mean(axis=1)
    return percentile_interval(improvement(adam_means, method_means), level)


def log_ratios(adam, method) -> np.ndarray:
    """Per pair log10(E_Adam / E): positive where the method's error is lower. Equal errors (two
    diverged runs included) give 0; a diverged method gives −inf, a diverged Adam +inf."""
    a, m = np.asarray(adam, dtype=float), np.asarray(method, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.log10(a) - np.log10(m)
    return np.where(a == m, 0.0, r)


def quartiles(values) -> tuple[float, float, float]:
    """25th, 50th and 75th percentiles (linear interpolation); ±inf values stay ordered at the
    ends, and a quantile that interpolates towards an infinite value is infinite."""
    v = np.asarray(values, dtype=float)
    largest = np.abs(v[np.isfinite(v)]).max(initial=0.0)  # no finite interpolation goes beyond it
    big = max(largest, 1.0) * 1e6
    q = np.percentile(np.clip(v, -big, big), [25, 50, 75])
    return tuple(float(np.sign(x) * np.inf) if abs(x) > largest * (1 + 1e-9) else float(x) for x in q)


def wins(adam, method) -> np.ndarray:
    """Per pair 1 where E < E_Adam, ½ where they are equal, 0 otherwise."""
    a, m = np.asarray(adam, dtype=float), np.asarray(method, dtype=float)
    return (m < a) + 0.5 * (m == a)


def prob_improvement(adam, method) -> float:
    """P(E < E_Adam) over seed pairs, ties counting ½: the mean of :func:`wins`."""
    return float(np.mean(wins(adam, method)))


def bootstrap_prob_improvement(adam, method, n_resamples: int, seed: int,
                               level: float = CI_LEVEL) -> tuple[float, float]:
    """Percentile-bootstrap interval of :func:`prob_improvement`: ``default_rng(seed)`` draws
    ``n_resamples`` resamples of the pairs (with replacement, a pair kept whole)."""
    w = wins(adam, method)
    index = np.random.default_rng(seed).integers(0, w.size, (n_resamples, w.size))
    return percentile_interval(w[index].mean(axis=1), level)


def wilcoxon_p(adam, method, min_pairs: int = MIN_WILCOXON_PAIRS) -> float:
    """Two-sided p-value of the Wilcoxon signed-rank test on the paired log errors (the
    differences log10 E_Adam − log10 E = :func:`log_ratios`); zero differences are dropped
    (``zero_method='wilcox'``), scipy's default method (exact without ties for up to 50 pairs).
    NaN below ``min_pairs`` pairs; 1 when every pair is tied."""
    d = log_ratios(adam, method)
    if d.size < min_pairs:
        return float("nan")
    if not np.any(d):
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # infinite differences rank highest, as they should
        return float(stats.wilcoxon(d, alternative="two-sided").pvalue)


def mean_ranks(medians: pd.DataFrame) -> pd.DataFrame:
    """Rows: settings, columns: methods, cells: median errors (NaN where a method did not run).
    Per method the mean over settings of its rank (1 = lowest median, ties share the average rank)
    and the number of settings ranked."""
    ranks = medians.rank(axis=1, method="average")
    return pd.DataFrame({"mean_rank": ranks.mean(axis=0), "n_settings": ranks.notna().sum(axis=0)})


def performance_profile(medians: pd.DataFrame, taus) -> pd.DataFrame:
    """ρ_m(τ) = share of the settings (rows) where method m's median error ≤ τ × the lowest median of
    that setting; a method absent from a setting or with an infinite median never counts there."""
    best = medians.min(axis=1)
    ratio = medians.div(best, axis=0).where(best > 0, np.where(medians.eq(best, axis=0), 1.0, np.inf))
    taus = np.asarray(taus, dtype=float)
    return pd.DataFrame({m: [(ratio[m] <= t).mean() for t in taus] for m in medians.columns}, index=taus)


def seed_band(curves: list[tuple[np.ndarray, np.ndarray]], log: bool = False):
    """(grid, median, 25th, 75th percentile) over seeds of curves y(x), on the union of their x
    values up to where the shortest one ends; each curve is interpolated linearly there, in log10 y
    when ``log``."""
    curves = [(x, np.log10(y) if log else y) for x, y in curves if len(x)]
    end = min(x[-1] for x, _ in curves)
    grid = np.unique(np.concatenate([x[x <= end] for x, _ in curves]))
    values = np.vstack([np.interp(grid, x, y) for x, y in curves])
    q25, median, q75 = np.percentile(values, [25, 50, 75], axis=0)
    return (grid, *(10.0 ** v if log else v for v in (median, q25, q75)))


def time_to_target(history: pd.DataFrame, metric: str, target: float) -> tuple[float, float]:
    """(iteration, seconds) of the first history row where ``metric`` is evaluated and ≤ ``target``;
    (inf, inf) when no row reaches it; (NaN, NaN) when the history never evaluates the metric."""
    evaluated = history[history[metric].notna()] if metric in history else history.iloc[:0]
    if evaluated.empty or not np.isfinite(target):
        return float("nan"), float("nan")
    reached = evaluated[evaluated[metric] <= target]
    if reached.empty:
        return float("inf"), float("inf")
    return float(reached["iteration"].iloc[0]), float(reached["seconds"].iloc[0])
