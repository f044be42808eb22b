"""The training loop: learning, records, resume, divergence, budgets."""

import math
import time

import pandas as pd
import pytest
import torch

from pinnbench import records
from pinnbench.budget import cosine_with_warmup
from pinnbench.train import prepare, train
from tests.conftest import TINY, compose_config


def setup_for(*overrides):
    return prepare(compose_config(*TINY, *overrides))


class Interrupt(Exception):
    pass


def test_a_short_run_learns_and_writes_its_records(tmp_path):
    setup = setup_for("method=adam", "budget.iterations=150", "eval_every=50", "problem.sizes.cpu.points.residual=256")
    summary = train(setup, tmp_path)
    history = pd.read_csv(tmp_path / records.HISTORY)
    initial = history.loc[history.iteration == 0, "test_mse"].item()
    assert summary["status"] == "completed" and summary["iterations"] == 150
    assert summary["test_mse"] < 0.5 * initial
    assert summary["best_test_mse"] <= summary["test_mse"]
    assert list(history.loc[history.test_mse.notna(), "iteration"]) == [0, 50, 100, 150]
    assert {"loss_residual", "loss_boundary", "loss_initial", "weight_residual", "mse_u"} <= set(history.columns)
    assert summary["resumed_from"] == 0 and (tmp_path / records.CHECKPOINT).exists()
    for key in ("problem", "method", "n_losses", "seed", "budget", "budget_amount", "seconds", "test_mse"):
        assert key in summary


@pytest.mark.parametrize("method", ["adam", "config"])
def test_resumed_run_ends_where_an_uninterrupted_run_ends(tmp_path, method):
    args = (f"method={method}", "budget.iterations=40", "checkpoint_every=20", "eval_every=20", "seed=3")
    whole = train(setup_for(*args), tmp_path / "whole")

    def interrupt_at_30(iteration):
        if iteration == 30:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(setup_for(*args), tmp_path / "cut", on_iteration=interrupt_at_30)
    assert records.read_summary(tmp_path / "cut") is None
    resumed = train(setup_for(*args), tmp_path / "cut")
    assert resumed["resumed_from"] == 20 and resumed["iterations"] == 40
    assert resumed["test_mse"] == pytest.approx(whole["test_mse"], rel=1e-6)
    a = records.load_checkpoint(tmp_path / "whole" / records.CHECKPOINT)["model"]
    b = records.load_checkpoint(tmp_path / "cut" / records.CHECKPOINT)["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-6, atol=1e-7)
    h_whole = pd.read_csv(tmp_path / "whole" / records.HISTORY).drop(columns="seconds")
    h_cut = pd.read_csv(tmp_path / "cut" / records.HISTORY).drop(columns="seconds")
    pd.testing.assert_frame_equal(h_whole, h_cut, rtol=1e-6)


def test_relaunching_a_completed_run_changes_nothing(tmp_path, capsys):
    setup = setup_for("budget.iterations=10")
    train(setup, tmp_path)
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in tmp_path.iterdir()}
    summary = train(setup_for("budget.iterations=10"), tmp_path)
    assert summary["skipped"]
    assert "nothing to do" in capsys.readouterr().out
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in tmp_path.iterdir()} == before


def test_a_nan_loss_stops_the_run_as_diverged_and_keeps_the_records(tmp_path, monkeypatch, capsys):
    setup = setup_for("budget.iterations=100", "checkpoint_every=20", "log_every=5")
    calls = {"n": 0}
    original = setup.problem.group_loss

    def poisoned(*args, **kwargs):  # three losses per iteration: NaN from iteration 34 on
        calls["n"] += 1
        value = original(*args, **kwargs)
        return value * float("nan") if calls["n"] > 3 * 33 else value

    monkeypatch.setattr(setup.problem, "group_loss", poisoned)
    summary = train(setup, tmp_path)
    assert summary["status"] == "diverged"
    assert summary["iterations"] == 35  # the first logged iteration after the NaN
    assert "diverged" in capsys.readouterr().err
    history = pd.read_csv(tmp_path / records.HISTORY)
    assert history.iteration.max() == 35 and history.loss_residual.iloc[-1] != history.loss_residual.iloc[-1]
    assert records.load_checkpoint(tmp_path / records.CHECKPOINT)["iteration"] == 20
    assert records.read_summary(tmp_path)["status"] == "diverged"


def test_walltime_budget_excludes_evaluation_and_reaches_the_end_of_the_schedule(tmp_path, monkeypatch):
    setup = setup_for("budget=walltime", "budget.seconds=1.0", "eval_every=5", "log_every=5")
    original = setup.problem.error

    def slow_error(model):
        time.sleep(0.1)
        return original(model)

    monkeypatch.setattr(setup.problem, "error", slow_error)
    started = time.perf_counter()
    summary = train(setup, tmp_path)
    elapsed = time.perf_counter() - started
    history = pd.read_csv(tmp_path / records.HISTORY)
    evaluations = history.test_mse.notna().sum()
    assert summary["budget"] == "walltime" and summary["status"] == "completed"
    assert 1.0 <= summary["seconds"] < elapsed - 0.1 * (evaluations - 1)
    # the schedule follows the elapsed fraction of the budget: the last step's lr lies between the
    # schedule's values at the clock readings that bracket that step, and the last one is the end
    last, before = history.iloc[-1], history.iloc[-2]
    # (the schedule rises during the 1 % warm-up, so the upper bracket is taken after it)
    schedule = [cosine_with_warmup(min(t / 1.0, 1.0), 0.01, 1e-3, 1e-4) for t in (last.seconds, max(before.seconds, 0.01))]
    assert schedule[0] * (1 - 1e-9) <= last.lr <= schedule[1] * (1 + 1e-9)
    assert schedule[0] == pytest.approx(1e-4)


def test_the_iteration_that_ends_a_wall_time_budget_is_evaluated_and_saved(tmp_path, monkeypatch):
    """The budget is decided once per iteration: time that runs out between the decision and the
    next iteration cannot end the run without its final evaluation, history row and checkpoint."""
    from pinnbench.budget import Budget

    seen: dict[int, int] = {}

    def exhausted(self, iteration, seconds):  # the clock "runs out" while iteration 5 is not logged
        seen[iteration] = seen.get(iteration, 0) + 1
        return iteration >= 8 or (iteration >= 5 and seen[iteration] > 1)

    monkeypatch.setattr(Budget, "exhausted", exhausted)
    setup = setup_for("budget=walltime", "budget.seconds=100", "log_every=10", "eval_every=10")
    summary = train(setup, tmp_path)
    history = pd.read_csv(tmp_path / records.HISTORY)
    assert summary["iterations"] == 8 == history.iteration.iloc[-1]
    assert summary["test_mse"] == history.test_mse.iloc[-1] and not math.isnan(history.test_mse.iloc[-1])
    assert records.load_checkpoint(tmp_path / records.CHECKPOINT)["iteration"] == 8


HOME = ("problem=helmholtz", "problem.sizes.cpu.points.residual=64", "problem.sizes.cpu.points.boundary=32",
        "problem.sizes.cpu.width=16", "quiet=true", "plot=false")
"""A tiny Helmholtz run with its YAML's protocol: standardised inputs, exponential decay, lowest_loss."""


def test_the_lowest_loss_iterate_is_the_one_of_smallest_summed_loss_and_its_error_is_recorded(tmp_path):
    setup = prepare(compose_config(*HOME, "method=adam", "budget.iterations=30", "log_every=1", "eval_every=1"))
    assert setup.run.lowest_loss and setup.run.network.standardize and setup.run.schedule.kind == "exponential"
    summary = train(setup, tmp_path)
    history = pd.read_csv(tmp_path / records.HISTORY).iloc[1:]  # row 0: before training
    total = history.loss_residual + history.loss_boundary
    best = history.loc[total.idxmin()]
    assert summary["lowest_loss"] == pytest.approx(total.min(), rel=1e-6)
    assert summary["lowest_loss_iteration"] == best.iteration
    assert summary["lowest_loss_rel_l2"] == pytest.approx(best.rel_l2, rel=1e-6)  # evaluated after that step
    assert summary["lowest_loss_test_mse"] == pytest.approx(best.test_mse, rel=1e-6)
    # the learning rate decays by 0.9 per 1 000 iterations, from the first
    assert history.lr.iloc[0] == pytest.approx(1e-3) and history.lr.iloc[-1] == pytest.approx(1e-3 * 0.9**0.029)


def test_lowest_loss_survives_a_resume(tmp_path):
    args = (*HOME, "method=adam", "budget.iterations=40", "checkpoint_every=20", "eval_every=20")
    whole = train(prepare(compose_config(*args)), tmp_path / "whole")

    def interrupt_at_30(iteration):
        if iteration == 30:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(prepare(compose_config(*args)), tmp_path / "cut", on_iteration=interrupt_at_30)
    resumed = train(prepare(compose_config(*args)), tmp_path / "cut")
    for key in ("lowest_loss", "lowest_loss_iteration", "lowest_loss_rel_l2"):
        assert resumed[key] == pytest.approx(whole[key], rel=1e-6), key


def test_the_network_options_reach_the_trained_network_and_a_bad_input_name_is_refused(tmp_path):
    from pinnbench.errors import ConfigError
    from pinnbench.train import build

    trainee = build(prepare(compose_config(*HOME, "method=adam", "+network.periodic={x: 2.0}")))
    encoding = trainee.model.encoding
    assert encoding.omega[0] == pytest.approx(math.pi) and encoding.scale[1] == pytest.approx(2 / 12**0.5)
    assert build(prepare(compose_config(*TINY, "method=adam"))).model.encoding is None  # off by default
    with pytest.raises(ConfigError, match=r"network\.periodic\.z: 'z' is not an input of problem 'helmholtz'"):
        prepare(compose_config(*HOME, "method=adam", "+network.periodic={z: 1.0}"))
