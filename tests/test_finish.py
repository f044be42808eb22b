"""The finishing phase (finish=lbfgs): its share of the budget, its records, exact resume inside it,
a clean end on a failed step, and a lower loss than Adam alone for the same budget."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from pinnbench import records
from pinnbench.errors import ConfigError
from pinnbench.finish import Objective
from pinnbench.train import prepare, train
from tests.conftest import TINY, compose_config, tiny_problem
from tests.optimizers.test_optimizers import assert_same_records, interrupted_and_whole

LBFGS = ("finish=lbfgs", "finish.iterations=8")


def history(run_dir) -> pd.DataFrame:
    return pd.read_csv(run_dir / records.HISTORY)


def test_the_phase_is_the_last_iterations_of_the_budget_and_the_records_show_where_it_starts(tmp_path):
    summary = train(prepare(compose_config(*TINY, "method=lra", *LBFGS, "budget.iterations=20", "log_every=1")),
                    tmp_path)
    assert summary["status"] == "completed" and summary["iterations"] == 20 and summary["method"] == "lra+lbfgs"
    assert summary["finish_started_at"] == 12 and summary["finish_iterations"] == 8 and summary["finish_stopped"] is None
    assert summary["finish_evaluations"] >= 8 and summary["config"]["finish"]["iterations"] == 8
    rows = history(tmp_path)
    assert list(rows.phase) == ["main"] * 13 + ["finish"] * 8
    assert rows.loc[rows.iteration == 12, "test_mse"].notna().all()  # the main phase's end is evaluated
    assert rows.lr.iloc[12] == pytest.approx(1e-4) and (rows.lr.iloc[13:] == 1.0).all()  # schedule done at 12
    weights = rows.loc[rows.phase == "finish", [c for c in rows if c.startswith("weight_")]]
    assert (weights.nunique() == 1).all()  # a weighting method's weights are frozen in the phase
    assert rows.evaluations.iloc[-1] == summary["finish_evaluations"]


def test_without_a_phase_the_records_are_as_before(tmp_path):
    summary = train(prepare(compose_config(*TINY, "budget.iterations=4")), tmp_path)
    assert "phase" not in history(tmp_path) and not any(k.startswith("finish") for k in summary)
    assert summary["method"] == "config" and summary["config"]["finish"] == {"name": "none"}


def test_the_phase_on_a_toy_problem_ends_lower_than_adam_alone_with_the_same_budget(tmp_path):
    """Burgers with a small network on fixed points (a deterministic objective): 400 iterations of
    Adam against 250 of Adam and 150 of L-BFGS; the training loss (the sum of the losses at the fixed
    points) ends below half of Adam's (about a quarter on this machine)."""
    common = (*TINY, *tiny_problem("burgers"), "method=adam", "resample=false", "budget.iterations=400",
              "eval_every=400", "log_every=400", "lr=3e-3")
    adam = train(prepare(compose_config(*common)), tmp_path / "adam")
    finished = train(prepare(compose_config(*common, "finish=lbfgs", "finish.iterations=150")), tmp_path / "lbfgs")
    assert adam["iterations"] == finished["iterations"] == 400 and finished["finish_stopped"] is None

    def final_loss(run_dir):
        last = history(run_dir).iloc[-1]
        return sum(last[c] for c in last.index if c.startswith("loss_"))

    assert final_loss(tmp_path / "lbfgs") < 0.5 * final_loss(tmp_path / "adam")


@pytest.mark.parametrize("options", [(), ("finish.dtype=float64",), ("method=config", "optimizer=muon")],
                         ids=["run dtype", "float64 phase", "config-muon"])
def test_resumed_inside_the_phase_ends_where_an_uninterrupted_run_ends(tmp_path, options):
    args = (*TINY, "method=adam", *LBFGS, *options, "budget.iterations=20", "checkpoint_every=15", "eval_every=5",
            "seed=4")
    whole, resumed = interrupted_and_whole(tmp_path, args, stop=18)
    assert resumed["resumed_from"] == 15 and resumed["finish_started_at"] == whole["finish_started_at"] == 12
    assert resumed["test_mse"] == whole["test_mse"] and resumed["finish_evaluations"] == whole["finish_evaluations"]
    assert_same_records(tmp_path)


def test_resumed_at_the_end_of_the_main_phase_ends_where_an_uninterrupted_run_ends(tmp_path):
    """The main phase's last iteration is checkpointed; the phase starts on resume."""
    args = (*TINY, "method=adam", *LBFGS, "budget.iterations=20", "checkpoint_every=100", "eval_every=5")
    whole, resumed = interrupted_and_whole(tmp_path, args, stop=14)
    assert resumed["resumed_from"] == 12 and resumed["test_mse"] == whole["test_mse"]
    assert_same_records(tmp_path)


def test_a_float64_phase_converts_the_network(tmp_path):
    train(prepare(compose_config(*TINY, *LBFGS, "budget.iterations=10", "finish.dtype=float64")), tmp_path)
    model = records.load_checkpoint(tmp_path / records.CHECKPOINT)["model"]
    assert all(v.dtype == torch.float64 for v in model.values())


def test_a_nan_ends_the_phase_cleanly_with_the_last_good_parameters(tmp_path, monkeypatch):
    setup = prepare(compose_config(*TINY, "method=adam", *LBFGS, "budget.iterations=20", "log_every=1"))
    original, calls = setup.problem.group_loss, {"n": 0}

    def poisoned(model, batches, group):  # the objective turns NaN from the phase's 5th evaluation on
        value = original(model, batches, group)
        if isinstance(batches, dict) and getattr(batches, "key", (0, 0))[1] == 12:
            calls["n"] += 1
            if calls["n"] > 3 * 4:
                return value * math.nan
        return value

    monkeypatch.setattr(setup.problem, "group_loss", poisoned)
    summary = train(setup, tmp_path)
    assert summary["status"] == "completed" and summary["finish_stopped"].startswith("the objective became nan")
    assert summary["iterations"] < 20 and math.isfinite(summary["test_mse"])
    rows = history(tmp_path)
    last, before = rows.iloc[-1], rows.iloc[-2]
    losses = [c for c in rows if c.startswith("loss_")]
    assert (last[losses] == before[losses]).all()  # the failing step was undone: the last good parameters
    model = records.load_checkpoint(tmp_path / records.CHECKPOINT)["model"]
    assert all(torch.isfinite(v).all() for v in model.values())


def test_a_wall_time_budget_gives_the_phase_its_share_of_the_seconds(tmp_path):
    summary = train(prepare(compose_config(*TINY, "budget=walltime", "budget.seconds=1.5", "finish=lbfgs",
                                           "finish.share=0.4", "log_every=1")), tmp_path)
    rows = history(tmp_path)
    started = summary["finish_started_at"]
    switch = rows.loc[rows.iteration == started, "seconds"].item()
    assert 0.9 <= switch < rows.loc[rows.iteration == started + 1, "seconds"].item() and summary["seconds"] >= 1.5
    assert rows.loc[rows.iteration < started, "seconds"].max() < 0.9
    assert (rows.loc[rows.iteration > started, "phase"] == "finish").all()


@pytest.mark.parametrize("overrides, message", [
    (["finish.iterations=6"], "finish.iterations=6 must be below the run's 6 iterations"),
    (["finish.share=1"], "finish.share=1.0 must lie strictly between 0 and 1"),
    (["finish.dtype=float16"], "finish.dtype='float16' is not a dtype"),
    (["finish.history_size=0"], "finish.history_size=0 must be a positive integer"),
])
def test_bad_phase_options_are_refused_before_training(overrides, message):
    with pytest.raises(ConfigError) as error:
        prepare(compose_config(*TINY, "budget.iterations=6", "finish=lbfgs", *overrides))
    assert message in str(error.value)


def test_the_objective_remembers_its_last_evaluation():
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    objective = Objective([w], lambda: (w ** 2).sum())
    assert objective().item() == 5.0 and objective().item() == 5.0 and objective.evaluations == 1
    assert torch.equal(w.grad, torch.tensor([2.0, 4.0]))
    with torch.no_grad():
        w.add_(1.0)
    assert objective().item() == 13.0 and objective.evaluations == 2
