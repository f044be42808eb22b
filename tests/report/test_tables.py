"""The summary table: seed statistics, improvements, paired comparisons with Adam, ranks, checked
against values worked out by hand or recomputed independently with numpy."""

import math

import numpy as np
import pandas as pd
import pytest

from pinnbench.report.collect import SETTING, collect_runs
from pinnbench.report.tables import (errors_view, pairs_table, paper_views, rank_table, setting_medians,
                                     significance_lines, summarize, to_latex, to_markdown, versus_view)
from tests.report.conftest import write_run


def row(summary, **keys):
    table = summary.table
    mask = np.ones(len(table), dtype=bool)
    for key, value in keys.items():
        mask &= (table[key] == value).to_numpy()
    assert mask.sum() == 1, keys
    return table[mask].iloc[0]


@pytest.fixture
def summary(study):
    return summarize(collect_runs([study]), n_resamples=2000)


def test_mean_and_population_std_over_seeds(summary):
    adam = row(summary, problem="burgers", method="adam", budget="iterations")
    config = row(summary, problem="burgers", method="config", budget="iterations")
    assert adam["mean"] == pytest.approx(0.04) and config["mean"] == pytest.approx(0.02)
    assert config["std"] == pytest.approx(0.01 * np.sqrt(2 / 3))  # ddof = 0
    assert (config["median"], config["min"], config["max"]) == (0.02, 0.01, 0.03)
    assert config["iqm"] == pytest.approx(0.02) and config["metric"] == "test_mse"
    assert (adam["n_seeds"], config["n_seeds"]) == (3, 3)
    assert config["ms_per_iteration"] == pytest.approx(8.0) and config["iterations"] == 200


def test_diverged_and_incomplete_runs_are_counted_and_kept_out_of_the_means(summary):
    config = row(summary, problem="burgers", method="config", budget="iterations")
    assert config["n_excluded"] == 2 and config["mean"] == pytest.approx(0.02)  # not 1e6
    assert config["n_diverged"] == 1 and config["max"] == 0.03
    assert any("config" in n and "diverged (seeds [3])" in n for n in summary.notes)


def test_improvement_over_adam_is_relative_to_the_seed_means(summary):
    config = row(summary, problem="burgers", method="config", budget="iterations")
    assert config["improvement_over_adam_percent"] == pytest.approx((0.04 - 0.02) / 0.04 * 100)  # 50 %
    adam = row(summary, problem="burgers", method="adam", budget="iterations")
    assert adam["improvement_over_adam_percent"] == 0 and np.isnan(adam["ci_low"])
    mconfig = row(summary, method="mconfig")  # Adam at equal wall time: 0.04 twice; M-ConFIG 0.01, 0.02
    assert mconfig["improvement_over_adam_percent"] == pytest.approx((0.04 - 0.015) / 0.04 * 100)


def test_bootstrap_interval_equals_an_independent_numpy_bootstrap(summary):
    config = row(summary, problem="burgers", method="config", budget="iterations")
    rng = np.random.default_rng(0)
    method_means = rng.choice([0.01, 0.02, 0.03], (2000, 3)).mean(axis=1)
    adam_means = rng.choice([0.03, 0.04, 0.05], (2000, 3)).mean(axis=1)
    expected = np.percentile((adam_means - method_means) / adam_means * 100, [2.5, 97.5])
    assert (config["ci_low"], config["ci_high"]) == pytest.approx(tuple(expected), rel=1e-12)
    assert config["ci_low"] < config["improvement_over_adam_percent"] < config["ci_high"]


def test_bootstrap_interval_collapses_when_every_resample_agrees(tmp_path):
    for seed in range(3):
        write_run(tmp_path, method="adam", seed=seed, test_mse=0.04)
        write_run(tmp_path, method="config", seed=seed, test_mse=0.01)
    config = row(summarize(collect_runs([tmp_path])), method="config")
    assert config["improvement_over_adam_percent"] == pytest.approx(75.0)
    assert (config["ci_low"], config["ci_high"]) == pytest.approx((75.0, 75.0))


def test_interval_is_left_empty_with_one_seed(tmp_path):
    write_run(tmp_path, method="adam", test_mse=0.04)
    write_run(tmp_path, method="config", test_mse=0.03)
    config = row(summarize(collect_runs([tmp_path])), method="config")
    assert config["improvement_over_adam_percent"] == pytest.approx(25.0) and np.isnan(config["ci_low"])


def test_missing_adam_leaves_the_cell_empty_and_says_why(summary):
    kovasznay = row(summary, problem="kovasznay")
    assert np.isnan(kovasznay["improvement_over_adam_percent"]) and kovasznay["mean"] == 0.5
    assert np.isnan(kovasznay["p_improve"]) and np.isnan(kovasznay["n_pairs"])
    assert any("kovasznay" in n and "no completed or diverged Adam run" in n for n in summary.notes)
    line = next(l for l in to_markdown(versus_view(summary.table)).splitlines() if "kovasznay" in l)
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[5:] == ["", "", "", "", ""]  # n_pairs, improvement, log ratio, P(improve), Wilcoxon


def test_adam_is_matched_within_the_same_grouping_and_budget(tmp_path):
    write_run(tmp_path, method="adam", n_losses=3, test_mse=0.04)
    write_run(tmp_path, method="config", n_losses=2, test_mse=0.01)
    write_run(tmp_path, method="config", n_losses=3, amount=300, test_mse=0.01)
    table = summarize(collect_runs([tmp_path])).table
    assert table.query("method == 'config'")["improvement_over_adam_percent"].isna().all()


def test_a_setting_whose_runs_all_failed_stays_in_the_table(tmp_path):
    write_run(tmp_path, method="adam", test_mse=0.04)
    write_run(tmp_path, method="pcgrad", status="diverged", test_mse=float("nan"))
    write_run(tmp_path, method="lra", summary=False)
    summary = summarize(collect_runs([tmp_path]))
    pcgrad = row(summary, method="pcgrad")
    assert pcgrad["n_seeds"] == 0 and pcgrad["n_excluded"] == 1 and np.isnan(pcgrad["mean"])
    assert pcgrad["n_pairs"] == 1 and pcgrad["p_improve"] == 0.0 and pcgrad["median_log10_ratio"] == -np.inf
    lra = row(summary, method="lra")
    assert lra["n_seeds"] == 0 and lra["n_excluded"] == 1 and np.isnan(lra["n_pairs"])
    assert any("lra" in n and "no completed run" in n for n in summary.notes)


def test_latex_table_escapes_names(summary):
    tex = to_latex(errors_view(summary.table))
    assert tex.startswith("\\begin{tabular}") and "n\\_seeds" in tex and "\\bottomrule" in tex


ADAM = [1.0, 2.0, 4.0, 1.0, 8.0, 1.0]
"""The made-up study worked out by hand (see also test_stats.py): Burgers at 200 iterations, seeds 0–5.
good: 0.1, 2 (tie), 1, 0.01, 16, and seed 5 diverged; pcgrad: seeds 0–2 at half Adam's error and a
seed 6 Adam lacks; tie: Adam's errors; best: a tenth of Adam's; worst: ten times Adam's. Kovasznay:
one seed of Adam (0.04) and ConFIG (0.01). Burgers at 10 s: Adam 1, best 2."""


def tidy(rows) -> pd.DataFrame:
    """A runs table as collect_runs makes it, from (problem, budget, method, seed, error or status)."""
    records = []
    for problem, budget, method, seed, error in rows:
        status = error if isinstance(error, str) else "completed"
        records.append(dict(run_dir=f"{problem}/{budget}/{method}/{seed}", problem=problem, size="cpu",
                            n_losses=2 if problem == "kovasznay" else 3, budget=budget,
                            budget_amount=200.0 if budget == "iterations" else 10.0, variant="", method=method,
                            seed=seed, device="cpu", status=status, included=status == "completed",
                            test_mse=np.nan if isinstance(error, str) else error, ms_per_iteration=1.0,
                            iterations=200))
    return pd.DataFrame(records)


@pytest.fixture(scope="module")
def made_up():
    good = [0.1, 2.0, 1.0, 0.01, 16.0, "diverged"]
    rows = [("burgers", "iterations", m, s, e) for m, errors in
            [("adam", ADAM), ("good", good), ("tie", ADAM), ("best", [0.1 * a for a in ADAM]),
             ("worst", [10 * a for a in ADAM])] for s, e in enumerate(errors)]
    rows += [("burgers", "iterations", "pcgrad", s, e) for s, e in [(0, 0.5), (1, 1.0), (2, 2.0), (6, 0.1)]]
    rows += [("kovasznay", "iterations", "adam", 0, 0.04), ("kovasznay", "iterations", "config", 0, 0.01),
             ("burgers", "walltime", "adam", 0, 1.0), ("burgers", "walltime", "best", 0, 2.0)]
    runs = tidy(rows)
    return runs, summarize(runs, n_resamples=1000)


def test_seed_statistics_leave_the_diverged_seed_out(made_up):
    good = row(made_up[1], problem="burgers", budget="iterations", method="good")
    assert (good["n_seeds"], good["n_diverged"], good["n_excluded"]) == (5, 1, 1)
    assert good["mean"] == pytest.approx(3.822) and good["std"] == pytest.approx(6.131422, rel=1e-6)
    assert (good["median"], good["min"], good["max"]) == (1.0, 0.01, 16.0)
    assert good["iqm"] == pytest.approx((0.1 + 1 + 2) / 3)
    assert good["improvement_over_adam_percent"] == pytest.approx((17 / 6 - 3.822) / (17 / 6) * 100)


def test_pairs_count_the_diverged_seed_as_infinite_error(made_up):
    good = row(made_up[1], problem="burgers", budget="iterations", method="good")
    log2, log4 = math.log10(2), math.log10(4)
    assert good["n_pairs"] == 6 and good["median_log10_ratio"] == pytest.approx(log4 / 2)
    assert good["log10_ratio_q25"] == pytest.approx(-0.75 * log2)
    assert good["log10_ratio_q75"] == pytest.approx(log4 + 0.75 * (1 - log4))
    assert good["p_improve"] == pytest.approx(3.5 / 6)
    assert good["p_improve_low"] <= good["p_improve"] <= good["p_improve_high"]
    assert good["wilcoxon_p"] == pytest.approx(26 / 32)


def test_ties_with_adam(made_up):
    tie = row(made_up[1], problem="burgers", budget="iterations", method="tie")
    assert tie["p_improve"] == 0.5 and (tie["p_improve_low"], tie["p_improve_high"]) == (0.5, 0.5)
    assert tie["median_log10_ratio"] == 0 and tie["wilcoxon_p"] == 1.0
    assert tie["improvement_over_adam_percent"] == 0


def test_a_seed_without_adam_is_left_unpaired_and_said(made_up):
    pcgrad = row(made_up[1], problem="burgers", budget="iterations", method="pcgrad")
    assert pcgrad["n_seeds"] == 4 and pcgrad["n_pairs"] == 3
    assert pcgrad["median_log10_ratio"] == pytest.approx(math.log10(2)) and pcgrad["p_improve"] == 1.0
    assert np.isnan(pcgrad["wilcoxon_p"])  # 3 pairs < 5
    assert any("pcgrad" in n and "seed(s) [6] have no finished or diverged Adam run" in n and "3 seed(s)" in n
               for n in made_up[1].notes)


def test_a_single_seed_has_no_std_no_interval_no_test(made_up):
    config = row(made_up[1], problem="kovasznay", method="config")
    assert config["n_seeds"] == 1 and np.isnan(config["std"]) and config["mean"] == 0.01
    assert config["improvement_over_adam_percent"] == pytest.approx(75.0) and np.isnan(config["ci_low"])
    assert config["n_pairs"] == 1 and config["p_improve"] == 1.0 and np.isnan(config["p_improve_low"])
    assert config["median_log10_ratio"] == pytest.approx(math.log10(4)) and np.isnan(config["wilcoxon_p"])


def test_significance_lines_say_which_methods_beat_adam(made_up):
    lines = significance_lines(made_up[1].table)
    burgers = next(l for l in lines if l.startswith("- burgers-cpu n=3 200 it"))
    assert "better than Adam: best (p = 0.0312)" in burgers and "worse than Adam: worst (p = 0.0312)" in burgers
    assert "no significant difference: good (p = 0.812), tie (p = 1)" in burgers
    assert "not tested, fewer than 5 seed pairs with Adam: pcgrad." in burgers
    kovasznay = next(l for l in lines if l.startswith("- kovasznay"))
    assert kovasznay == "- kovasznay-cpu n=2 200 it: not tested, fewer than 5 seed pairs with Adam: config."


def test_ranks_of_median_errors_per_budget_average_ties(made_up):
    medians = setting_medians(made_up[0])
    assert medians.loc[("burgers", "cpu", 3, "iterations", 200.0, ""), "good"] == 1.5  # median of 0.01…16, inf
    ranks = rank_table(medians).set_index(["budget", "method"])
    # Burgers: best 0.15, pcgrad 0.75, adam = good = tie 1.5 (ranks 3–5 → 4), worst 15; Kovasznay: config, adam
    expected = {"best": 1, "pcgrad": 2, "adam": (4 + 2) / 2, "good": 4, "tie": 4, "worst": 6, "config": 1}
    assert ranks.loc["iterations", "mean_rank"].to_dict() == pytest.approx(expected)
    assert ranks.loc[("iterations", "adam"), "n_settings"] == 2 and ranks.loc[("iterations", "good"), "n_settings"] == 1
    assert (ranks.loc["iterations", "n_settings_budget"] == 2).all()
    assert ranks.loc["walltime", "mean_rank"].to_dict() == {"adam": 1.0, "best": 2.0}


def test_views_show_empty_cells_not_nan(made_up):
    text = to_markdown(versus_view(made_up[1].table)) + to_markdown(errors_view(made_up[1].table))
    assert "nan" not in text
    good = next(l for l in to_markdown(versus_view(made_up[1].table)).splitlines() if "| good" in l)
    assert "+0.30 (×2)" in good and "0.58 [" in good and "0.812" in good


def test_a_diverged_adam_loses_every_pair_and_leaves_the_paper_improvement_empty():
    adam_seed0_diverged = [("burgers", "iterations", "adam", 0, "diverged"), ("burgers", "iterations", "adam", 1, 2.0)]
    summary = summarize(tidy(adam_seed0_diverged + [("burgers", "iterations", "config", 0, 0.5),
                                                    ("burgers", "iterations", "config", 1, 4.0)]))
    config = row(summary, method="config")
    assert config["p_improve"] == 0.5 and config["median_log10_ratio"] == np.inf  # median of +inf and log10(1/2)
    assert config["improvement_over_adam_percent"] == pytest.approx((2.0 - 2.25) / 2.0 * 100)  # Adam's seed 1 only
    summary = summarize(tidy(adam_seed0_diverged[:1] + [("burgers", "iterations", "config", 0, 1.0)]))
    assert np.isnan(row(summary, method="config")["improvement_over_adam_percent"])
    assert row(summary, method="config")["p_improve"] == 1.0
    assert any("every Adam run diverged" in n for n in summary.notes)


def test_paper_views_give_the_improvement_and_the_seeds_better_per_setting(made_up):
    runs, summary = made_up
    views = paper_views(summary.table, rank_table(setting_medians(runs)))
    assert list(views) == ["iterations", "walltime"]
    iterations = views["iterations"].set_index("method")
    assert list(iterations.columns) == ["burgers-cpu n=3 200 it", "kovasznay-cpu n=2 200 it"]
    # rows: Adam's median E first, then the methods by mean rank (best 1, config 1, pcgrad 2, good = tie 4, worst 6)
    assert list(iterations.index) == ["adam: median E", "best", "config", "pcgrad", "good", "tie", "worst"]
    adam_median = float(np.median(ADAM))
    assert iterations.loc["adam: median E", "burgers-cpu n=3 200 it"] == f"{adam_median:.2e}"
    assert iterations.loc["best", "burgers-cpu n=3 200 it"] == "+90 (6/6)"
    assert iterations.loc["worst", "burgers-cpu n=3 200 it"] == "-900 (0/6)"
    assert iterations.loc["tie", "burgers-cpu n=3 200 it"] == "+0 (3/6)"  # six ties, each counting 1/2
    good = row(summary, problem="burgers", budget="iterations", method="good")
    assert iterations.loc["good", "burgers-cpu n=3 200 it"] == \
        f"{round(good['improvement_over_adam_percent']):+d} (3.5/6)"
    assert iterations.loc["config", "kovasznay-cpu n=2 200 it"] == "+75 (1/1)"
    assert iterations.loc["config", "burgers-cpu n=3 200 it"] == ""  # config did not run there
    walltime = views["walltime"].set_index("method")
    assert walltime.loc["best", "burgers-cpu n=3 10 s"] == "-100 (0/1)"


def test_paper_views_without_ranks_order_methods_by_name(made_up):
    view = paper_views(made_up[1].table)["iterations"]
    assert view["method"].tolist() == ["adam: median E", "best", "config", "good", "pcgrad", "tie", "worst"]
    assert "nan" not in to_markdown(view) and "nan" not in to_latex(view)


def test_pairs_compare_any_two_methods_as_the_summary_compares_with_adam(made_up):
    runs, summary = made_up
    pairs = pairs_table(runs)
    burgers = pairs[(pairs["problem"] == "burgers") & (pairs["budget"] == "iterations")]
    for _, versus_adam in summary.table[(summary.table["problem"] == "burgers")
                                         & (summary.table["budget"] == "iterations")
                                         & (summary.table["method"] != "adam")].iterrows():
        pair = burgers[(burgers["method"] == versus_adam["method"]) & (burgers["versus"] == "adam")].iloc[0]
        assert pair["n_pairs"] == versus_adam["n_pairs"] and pair["p_better"] == versus_adam["p_improve"]
        for column in ("median_log10_ratio", "log10_ratio_q25", "log10_ratio_q75", "wilcoxon_p"):
            assert pair[column] == pytest.approx(versus_adam[column], nan_ok=True), (versus_adam["method"], column)


def test_pairs_between_two_methods_and_in_both_orders(made_up):
    pairs = pairs_table(made_up[0])
    burgers = pairs[(pairs["problem"] == "burgers") & (pairs["budget"] == "iterations")]
    best = burgers[(burgers["method"] == "best") & (burgers["versus"] == "worst")].iloc[0]
    assert best["n_pairs"] == len(ADAM) and best["median_log10_ratio"] == pytest.approx(2.0)
    assert best["p_better"] == 1.0 and best["wilcoxon_p"] == pytest.approx(2 / 2 ** len(ADAM))
    good = burgers[(burgers["method"] == "good") & (burgers["versus"] == "pcgrad")].iloc[0]
    assert good["n_pairs"] == 3  # the seeds both ran: 0, 1, 2
    assert good["median_log10_ratio"] == pytest.approx(math.log10(2))  # pcgrad / good: 5, 1/2, 2
    assert good["p_better"] == pytest.approx(2 / 3)
    assert np.isnan(good["wilcoxon_p"])
    for _, pair in burgers.iterrows():
        back = burgers[(burgers["method"] == pair["versus"]) & (burgers["versus"] == pair["method"])].iloc[0]
        assert back["p_better"] == pytest.approx(1 - pair["p_better"])
        assert back["median_log10_ratio"] == pytest.approx(-pair["median_log10_ratio"])
    walltime = pairs[pairs["budget"] == "walltime"]
    assert set(zip(walltime["method"], walltime["versus"])) == {("adam", "best"), ("best", "adam")}


def test_mean_ranks_compare_only_over_settings_every_method_ran():
    from pinnbench.report.tables import common_rank_table, rank_table

    index = pd.MultiIndex.from_tuples([("burgers", "cpu", n, "iterations", 3000.0, "") for n in (2, 3)],
                                      names=["problem", "size", "n_losses", "budget", "budget_amount", "variant"])
    medians = pd.DataFrame({"adam": [1.0, float("nan")], "config": [2.0, 0.5], "pcgrad": [3.0, 1.0]}, index=index)
    ranks = rank_table(medians).set_index("method")
    assert ranks.loc["adam", "n_settings"] == 1 and ranks.loc["config", "n_settings"] == 2  # not comparable
    common = common_rank_table(medians)["iterations"].set_index("method")
    assert common["mean_rank"].to_dict() == {"adam": 1.0, "config": 2.0, "pcgrad": 3.0}
    assert set(common["n_settings"]) == {1}
    assert common_rank_table(medians.fillna(9.0)) == {}  # every method ran every setting: nothing to add
    assert len(common_rank_table(pd.DataFrame({"adam": [1.0, float("nan")], "config": [float("nan"), 2.0]},
                                              index=index))["iterations"]) == 0


def test_a_budget_far_below_the_sizes_default_is_warned_about():
    from pinnbench.report import default_iterations
    from pinnbench.report.tables import short_budget_notes

    assert default_iterations("burgers", "cpu") == 3000 and default_iterations("nosuch", "cpu") is None
    runs = pd.DataFrame({"problem": ["burgers", "burgers", "burgers"], "size": ["cpu"] * 3,
                         "budget": ["iterations", "iterations", "walltime"], "budget_amount": [200.0, 3000.0, 10.0]})
    notes = short_budget_notes(runs, default_iterations)
    assert len(notes) == 1 and "200 iterations" in notes[0] and "default (3000)" in notes[0]
    assert short_budget_notes(runs.iloc[1:], default_iterations) == []
