"""Reading run directories: every run gets a row, whatever state it was left in."""

import json

import pandas as pd
import pytest

from pinnbench.errors import ConfigError
from omegaconf import OmegaConf

from pinnbench.cli import config_dir
from pinnbench.report.collect import (available_metrics, collect_runs, find_run_dirs, is_error_column, method_label,
                                      variant)
from pinnbench.report.tables import summarize
from tests.report.conftest import write_run


def test_every_run_below_the_paths_is_found_at_any_depth(study):
    runs = collect_runs([study])
    assert len(runs) == 6 + 2 + 1 + 4
    assert set(runs["method"]) == {"adam", "config", "mconfig"}
    assert not any(".hydra" in d for d in runs["run_dir"])


def test_a_completed_run_is_read_from_its_summary(tmp_path):
    write_run(tmp_path, method="config", seed=2, test_mse=0.0123, ms_per_iteration=7.5)
    run = collect_runs([tmp_path]).iloc[0]
    setting = (run["problem"], run["size"], run["method"], run["n_losses"], run["seed"])
    assert setting == ("burgers", "cpu", "config", 3, 2)
    assert (run["budget"], run["budget_amount"], run["iterations"]) == ("iterations", 200, 200)
    assert run["test_mse"] == run["mse_u"] == 0.0123 and run["ms_per_iteration"] == 7.5
    assert run["status"] == "completed" and run["included"] and run["variant"] == ""


def test_diverged_and_half_written_runs_are_listed_not_included(study):
    runs = collect_runs([study]).set_index("seed")
    config = collect_runs([study]).query("method == 'config' and problem == 'burgers'").set_index("seed")
    assert config.loc[3, "status"] == "diverged" and not config.loc[3, "included"]
    assert "diverged" in config.loc[3, "note"]
    half = config.loc[4]
    assert half["status"] == "incomplete" and not half["included"] and "no summary.json" in half["note"]
    assert (half["n_losses"], half["budget"], half["budget_amount"]) == (3, "iterations", 200)  # from .hydra/
    assert runs["included"].sum() == 11


def test_an_interrupted_run_reports_how_far_it_got_and_the_size_default_budget(tmp_path):
    run_dir = write_run(tmp_path, amount=None, summary=False, history=False)
    write_run(tmp_path / "other", amount=200, summary=False)  # history up to iteration 200, no summary
    runs = collect_runs([tmp_path]).set_index("run_dir")
    assert runs.loc[str(run_dir), "budget_amount"] == 3000  # budget.iterations: null -> the size's default
    other = runs.drop(str(run_dir)).iloc[0]
    assert other["status"] == "incomplete" and other["iterations"] == 200


def test_a_run_with_only_a_summary_or_only_a_history_is_a_run(tmp_path):
    run_dir = write_run(tmp_path / "a", seed=0)
    (run_dir / ".hydra" / "config.yaml").unlink()
    (run_dir / ".hydra" / "overrides.yaml").unlink()
    (run_dir / ".hydra").rmdir()
    assert find_run_dirs([tmp_path]) == [run_dir]
    assert collect_runs([tmp_path]).iloc[0]["included"]


def test_a_corrupt_summary_is_unreadable_not_a_crash(tmp_path):
    run_dir = write_run(tmp_path)
    (run_dir / "summary.json").write_text('{"status": "compl')
    run = collect_runs([tmp_path]).iloc[0]
    assert run["status"] == "unreadable" and not run["included"] and "summary.json" in run["note"]


def test_overrides_outside_the_run_name_make_a_variant(tmp_path):
    assert variant(["method=adam", "seed=1", "quiet=true", "+lr=0.01", "hydra.run.dir=x", "budget.iterations=5"]) \
        == "lr=0.01"
    write_run(tmp_path, overrides=["lr=0.01"])
    assert collect_runs([tmp_path]).iloc[0]["variant"] == "lr=0.01"


def method_node(name: str, **options) -> dict:
    node = OmegaConf.load(config_dir() / "method" / f"{name}.yaml")
    return OmegaConf.to_container(OmegaConf.merge(node, options))


def test_method_options_name_the_method_and_leave_the_setting_alone():
    assert variant(["method=mconfig", "method.refresh=2", "+lr=0.01"]) == "lr=0.01"
    assert method_label(method_node("mconfig", refresh=2), ["method=mconfig", "method.refresh=2"]) \
        == "mconfig [refresh=2]"
    assert method_label(method_node("mconfig"), ["method=mconfig"]) == "mconfig"
    assert method_label(method_node("torchjd", aggregator="MGDA"), ["method.aggregator=MGDA"]) == "torchjd-mgda"
    cagrad = method_node("torchjd", aggregator="CAGrad", kwargs={"c": 0.4})
    assert method_label(cagrad, ["method.aggregator=CAGrad", "+method.kwargs.c=0.4"]) == "torchjd-cagrad(c=0.4)"
    assert method_label({"_target_": "nowhere.Method", "name": "gone"}, ["method.x=1"]) == "gone"


def test_runs_differing_only_by_method_options_share_adam_and_the_setting(tmp_path):
    for seed in (0, 1):
        write_run(tmp_path, method="adam", seed=seed, test_mse=0.02)
        write_run(tmp_path / "upgrad", method="torchjd", seed=seed, test_mse=0.01,
                  overrides=["method.aggregator=UPGrad"])
    runs = collect_runs([tmp_path])
    assert set(runs["variant"]) == {""}
    table = summarize(runs, n_resamples=100).table.set_index("method")
    assert table.loc["torchjd", "improvement_over_adam_percent"] == pytest.approx(50.0)


def test_a_missing_path_or_one_without_runs_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        collect_runs([tmp_path / "nowhere"])
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(ConfigError, match="holds no run directory"):
        collect_runs([tmp_path / "empty"])


def test_a_failed_run_keeps_its_error_and_its_setting_from_the_config(tmp_path):
    run_dir = write_run(tmp_path, method="pcgrad", summary=False)
    (run_dir / "summary.json").write_text(json.dumps({  # as a sweep records a run that raised
        "status": "failed", "error": "RuntimeError: boom", "problem": "burgers", "method": "pcgrad", "n_losses": 3,
        "seed": 0, "size": "cpu", "budget": "iterations", "device": "cpu"}))
    run = collect_runs([tmp_path]).iloc[0]
    assert run["status"] == "failed" and not run["included"] and "RuntimeError: boom" in run["note"]
    assert run["budget_amount"] == 200 and pd.isna(run["test_mse"])


@pytest.mark.parametrize("name, expected", [
    ("test_mse", True), ("best_test_mse", True), ("mse_u", True), ("rel_l2", True), ("rel_l2_u", True),
    ("test_mse_exact", True), ("test_mse_paper", True), ("seconds", False), ("ms_per_iteration", False),
    ("loss_residual", False), ("cos_update_residual", False), ("diagnostics_overhead_percent", False)])
def test_error_columns_are_told_by_their_name(name, expected):
    assert is_error_column(name) is expected


def test_a_metric_old_records_lack_leaves_them_out_with_a_note(tmp_path):
    write_run(tmp_path / "new", seed=0, errors={"rel_l2": 0.2, "rel_l2_u": 0.2})
    write_run(tmp_path / "old", seed=1)
    runs = collect_runs([tmp_path], metric="rel_l2").set_index("seed")
    assert runs.loc[0, "included"] and runs.loc[0, "rel_l2"] == 0.2 and runs.loc[0, "rel_l2_u"] == 0.2
    assert not runs.loc[1, "included"] and runs.loc[1, "note"] == "completed, but it records no rel_l2"
    assert collect_runs([tmp_path])["included"].all()  # test_mse: both
    assert available_metrics(collect_runs([tmp_path])) == ["test_mse", "best_test_mse", "mse_u", "rel_l2", "rel_l2_u"]


def test_a_metric_no_run_records_is_refused_with_the_available_ones(study):
    with pytest.raises(ConfigError, match="no completed run records it.*available: test_mse, best_test_mse, mse_u"):
        collect_runs([study], metric="rel_l2")
    with pytest.raises(ConfigError, match="not an error metric"):
        collect_runs([study], metric="iterations")


def test_a_metric_only_history_records_is_its_last_evaluated_value(tmp_path):
    for seed, status in ((0, "completed"), (1, "diverged")):
        run_dir = write_run(tmp_path, seed=seed, test_mse=0.04, status=status)
        history = pd.read_csv(run_dir / "history.csv")
        history["rel_l2"] = history["test_mse"] ** 0.5
        history.to_csv(run_dir / "history.csv", index=False)
    runs = collect_runs([tmp_path], metric="rel_l2").set_index("seed")
    assert runs.loc[0, "rel_l2"] == pytest.approx(0.2) and runs.loc[0, "included"]
    assert pd.isna(runs.loc[1, "rel_l2"]) and not runs.loc[1, "included"]  # only a completed run's last row is final


def test_the_optimiser_and_the_finish_name_the_trainer_and_leave_the_setting_alone():
    overrides = ["method=config", "optimizer=soap", "optimizer.precondition_frequency=10", "finish=lbfgs",
                 "finish.iterations=20", "+lr=0.01"]
    assert variant(overrides) == "lr=0.01"
    assert method_label(method_node("config"), overrides, "soap", "lbfgs") == \
        "config+soap+lbfgs [finish.iterations=20;optimizer.precondition_frequency=10]"
    assert method_label(method_node("config"), ["method=config"], "adam", "none") == "config"
    assert method_label(method_node("adam"), ["finish=lbfgs"], "adam", "lbfgs") == "adam+lbfgs"
