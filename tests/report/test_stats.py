"""The statistics of pinnbench.report.stats against values worked out by hand.

The running example: six seed pairs (Adam, method) with errors
    seed     0     1    2     3     4    5
    Adam     1     2    4     1     8    1
    method   0.1   2    1     0.01  16   diverged (+inf)
so log10(E_Adam / E) = 1, 0, log10 4, 2, −log10 2, −inf and the method wins 1, ½, 1, 1, 0, 0.
"""

import math

import numpy as np
import pandas as pd
import pytest

from pinnbench.report import stats

ADAM = [1.0, 2.0, 4.0, 1.0, 8.0, 1.0]
METHOD = [0.1, 2.0, 1.0, 0.01, 16.0, math.inf]
LOG2, LOG4 = math.log10(2), math.log10(4)


def test_describe_five_values():
    d = stats.describe([0.1, 2.0, 1.0, 0.01, 16.0])  # sorted 0.01 0.1 1 2 16
    assert d["n"] == 5 and d["median"] == 1.0 and (d["min"], d["max"]) == (0.01, 16.0)
    assert d["mean"] == pytest.approx(19.11 / 5)  # 3.822
    assert d["std"] == pytest.approx(6.131422, rel=1e-6)  # sqrt(187.97 / 5), ddof = 0
    assert d["iqm"] == pytest.approx((0.1 + 1.0 + 2.0) / 3)  # floor(5/4) = 1 value cut at each end


def test_describe_iqm_cuts_a_quarter_at_each_end_and_ignores_an_outlier():
    assert stats.describe([1, 2, 3, 4, 5, 6, 7, 1000])["iqm"] == pytest.approx(4.5)  # mean of 3, 4, 5, 6
    assert stats.describe([1.0, 2.0, 6.0])["iqm"] == pytest.approx(3.0)  # below 4 values: the plain mean


def test_describe_one_seed_has_no_std_and_none_has_nothing():
    one = stats.describe([0.5])
    assert one["n"] == 1 and one["mean"] == one["median"] == one["iqm"] == 0.5 and math.isnan(one["std"])
    assert stats.describe([])["n"] == 0 and math.isnan(stats.describe([])["mean"])


def test_paper_improvement_on_seed_means():
    assert stats.improvement(0.04, 0.01) == pytest.approx(75.0)
    assert stats.improvement(17 / 6, 3.822) == pytest.approx(-34.894, abs=1e-3)


def test_log_ratios_with_ties_and_diverged_runs():
    np.testing.assert_allclose(stats.log_ratios(ADAM, METHOD), [1.0, 0.0, LOG4, 2.0, -LOG2, -np.inf])
    # Adam diverged: +inf for the method; both diverged: a tie
    np.testing.assert_array_equal(stats.log_ratios([np.inf, np.inf], [0.1, np.inf]), [np.inf, 0.0])


def test_quartiles_interpolate_and_keep_infinities_at_the_ends():
    # sorted: −inf, −0.301, 0, 0.602, 1, 2; positions 1.25, 2.5, 3.75
    q25, median, q75 = stats.quartiles(stats.log_ratios(ADAM, METHOD))
    assert median == pytest.approx(LOG4 / 2)
    assert q25 == pytest.approx(-LOG2 + 0.25 * LOG2)
    assert q75 == pytest.approx(LOG4 + 0.75 * (1 - LOG4))
    assert stats.quartiles([-np.inf, -np.inf, 1.0])[:2] == (-np.inf, -np.inf)
    assert stats.quartiles([-0.3, np.inf]) == (np.inf, np.inf, np.inf)  # −0.3 + t·(inf + 0.3) for t > 0
    q25, median, q75 = stats.quartiles([-0.3, 0.1, 0.2, np.inf])  # positions 0.75, 1.5, 2.25
    assert (q25, median, q75) == (pytest.approx(0.0), pytest.approx(0.15), np.inf)
    assert stats.quartiles([0.0, 0.0]) == (0.0, 0.0, 0.0)


def test_probability_of_improvement_counts_ties_as_half():
    assert stats.prob_improvement(ADAM, METHOD) == pytest.approx(3.5 / 6)
    assert stats.prob_improvement([1, 2, 3], [1, 2, 3]) == 0.5
    assert stats.prob_improvement([np.inf], [np.inf]) == 0.5


def test_probability_bootstrap_resamples_whole_pairs():
    wins = np.array([1.0, 0.5, 1.0, 1.0, 0.0, 0.0])
    index = np.random.default_rng(7).integers(0, 6, (500, 6))
    expected = np.percentile(wins[index].mean(axis=1), [2.5, 97.5])
    assert stats.bootstrap_prob_improvement(ADAM, METHOD, 500, 7) == pytest.approx(tuple(expected))
    assert stats.bootstrap_prob_improvement([1, 1, 1], [0.5, 0.5, 0.5], 200, 0) == (1.0, 1.0)


def test_wilcoxon_on_log_ratios_by_hand():
    # zero dropped; |d| ranks: 0.301→1, 0.602→2, 1→3, 2→4, inf→5; W+ = 9, W− = 6.
    # Exact null over 2^5 sign patterns: 13 of 32 have W ≤ 6, two-sided p = 26/32.
    assert stats.wilcoxon_p(ADAM, METHOD) == pytest.approx(26 / 32)
    assert stats.wilcoxon_p([2.0] * 6, [1.0] * 6) == pytest.approx(2 / 64)  # every pair better: the smallest p
    assert stats.wilcoxon_p([2.0] * 5, [1.0] * 5) == pytest.approx(2 / 32)  # 5 pairs can never reach 5 %


def test_wilcoxon_needs_five_pairs_and_all_ties_give_one():
    assert math.isnan(stats.wilcoxon_p([1, 2, 3, 4], [0.1, 0.2, 0.3, 0.4]))
    assert stats.wilcoxon_p([1.0] * 5, [1.0] * 5) == 1.0


def test_mean_ranks_average_ties_and_skip_absent_methods():
    medians = pd.DataFrame({"adam": [1.5, 0.04], "good": [1.5, np.nan], "pcgrad": [0.75, np.nan],
                            "tie": [1.5, np.nan], "config": [np.nan, 0.01]})
    ranks = stats.mean_ranks(medians)
    # setting 1: pcgrad 1, adam = good = tie share ranks 2..4 → 3; setting 2: config 1, adam 2
    assert ranks["mean_rank"].to_dict() == {"adam": 2.5, "good": 3.0, "pcgrad": 1.0, "tie": 3.0, "config": 1.0}
    assert ranks["n_settings"].to_dict() == {"adam": 2, "good": 1, "pcgrad": 1, "tie": 1, "config": 1}


def test_performance_profile_by_hand():
    medians = pd.DataFrame({"adam": [1.5, 0.04, 2.0], "pcgrad": [0.75, np.nan, np.inf], "config": [3.0, 0.01, 1.0]})
    # ratios to the best per setting: adam 2, 4, 2; pcgrad 1, absent, inf; config 4, 1, 1
    profile = stats.performance_profile(medians, [1.0, 2.0, 3.9, 4.0])
    assert profile["adam"].tolist() == pytest.approx([0, 2 / 3, 2 / 3, 1])
    assert profile["pcgrad"].tolist() == pytest.approx([1 / 3] * 4)
    assert profile["config"].tolist() == pytest.approx([2 / 3, 2 / 3, 2 / 3, 1])


def test_time_to_target_is_the_first_evaluated_row_at_or_below_it():
    history = pd.DataFrame({"iteration": [0, 10, 20, 30, 40], "seconds": [0.0, 0.1, 0.2, 0.3, 0.4],
                            "test_mse": [1.0, np.nan, 0.5, np.nan, 0.2]})
    assert stats.time_to_target(history, "test_mse", 0.5) == (20.0, 0.2)
    assert stats.time_to_target(history, "test_mse", 0.3) == (40.0, 0.4)
    assert stats.time_to_target(history, "test_mse", 2.0) == (0.0, 0.0)
    assert stats.time_to_target(history, "test_mse", 0.1) == (math.inf, math.inf)  # never
    assert all(math.isnan(v) for v in stats.time_to_target(history, "rel_l2", 0.5))  # not evaluated


def test_seed_band_is_median_and_quartiles_up_to_the_shortest_curve():
    x = np.array([0.0, 1.0, 2.0])
    grid, median, q25, q75 = stats.seed_band([(x, np.array([1.0, 1.0, 1.0])), (x, np.array([3.0, 3.0, 3.0])),
                                              (np.array([0.0, 2.0, 4.0]), np.array([2.0, 4.0, 9.0]))])
    np.testing.assert_allclose(grid, [0, 1, 2])
    np.testing.assert_allclose(median, [2, 3, 3])  # third curve at x = 1: 3 (linear)
    np.testing.assert_allclose(q25, [1.5, 2, 2])
    np.testing.assert_allclose(q75, [2.5, 3, 3.5])
    _, median, _, _ = stats.seed_band([(x, np.array([1.0, 10.0, 100.0])), (x, np.array([1.0, 1000.0, 1.0]))],
                                      log=True)
    np.testing.assert_allclose(median, [1.0, 100.0, 10.0])  # geometric: interpolated and taken in log10
