"""The summary table: means, stds, improvements and bootstrap intervals, checked against values
worked out by hand or recomputed independently with numpy."""

import numpy as np
import pytest

from pinnbench.report.collect import collect_runs
from pinnbench.report.tables import summarize, to_latex, to_markdown
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
    assert adam["mean_test_mse"] == pytest.approx(0.04) and config["mean_test_mse"] == pytest.approx(0.02)
    assert config["std_test_mse"] == pytest.approx(0.01 * np.sqrt(2 / 3))  # ddof = 0
    assert (adam["n_seeds"], config["n_seeds"]) == (3, 3)
    assert config["ms_per_iteration"] == pytest.approx(8.0) and config["iterations"] == 200


def test_diverged_and_incomplete_runs_are_counted_and_kept_out_of_the_means(summary):
    config = row(summary, problem="burgers", method="config", budget="iterations")
    assert config["n_excluded"] == 2 and config["mean_test_mse"] == pytest.approx(0.02)  # not 1e6


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
    assert np.isnan(kovasznay["improvement_over_adam_percent"]) and kovasznay["mean_test_mse"] == 0.5
    assert any("kovasznay" in n and "no completed Adam run" in n for n in summary.notes)
    line = next(l for l in to_markdown(summary.table).splitlines() if "kovasznay" in l)
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[8:11] == ["", "", ""]  # improvement, ci_low, ci_high


def test_adam_is_matched_within_the_same_grouping_and_budget(tmp_path):
    write_run(tmp_path, method="adam", n_losses=3, test_mse=0.04)
    write_run(tmp_path, method="config", n_losses=2, test_mse=0.01)
    write_run(tmp_path, method="config", n_losses=3, amount=300, test_mse=0.01)
    table = summarize(collect_runs([tmp_path])).table
    assert table.query("method == 'config'")["improvement_over_adam_percent"].isna().all()


def test_a_setting_whose_runs_all_failed_stays_in_the_table(tmp_path):
    write_run(tmp_path, method="adam", test_mse=0.04)
    write_run(tmp_path, method="pcgrad", status="diverged", test_mse=float("nan"))
    summary = summarize(collect_runs([tmp_path]))
    pcgrad = row(summary, method="pcgrad")
    assert pcgrad["n_seeds"] == 0 and pcgrad["n_excluded"] == 1 and np.isnan(pcgrad["mean_test_mse"])
    assert any("pcgrad" in n and "no completed run" in n for n in summary.notes)


def test_latex_table_escapes_names(summary):
    tex = to_latex(summary.table)
    assert tex.startswith("\\begin{tabular}") and "mean\\_test\\_mse" in tex and "\\bottomrule" in tex
