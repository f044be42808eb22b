"""Inverse problems: the PDE's parameter trained with the network from fixed observations; every
method trains it unchanged, at its own learning rate; checkpoints keep it; the records report it."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from torch import Tensor

from pinnbench import records
from pinnbench.cli import config_dir
from pinnbench.errors import ConfigError
from pinnbench.network import MLP
from pinnbench.settings import typed_options
from pinnbench.train import own_param_groups, prepare, resolved_config, train
from problems.base import LazyBatches
from tests.conftest import compose_config, tiny_problem
from tests.problems.conftest import make_problem

METHODS = sorted(p.stem for p in (config_dir() / "method").glob("*.yaml"))
INVERSE = {"burgers": ("nu", 0.01 / math.pi, 0.05), "kovasznay": ("re", 40.0, 20.0)}
"""problem: (unknown, truth, default initial value)."""


def inverse_run(problem: str, *overrides: str) -> list[str]:
    return [f"problem={problem}", *tiny_problem(problem), "problem.inverse.enabled=true", "problem.inverse.points=32",
            "quiet=true", "plot=false", *overrides]


def network(problem) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(problem.input_dim, 16), torch.nn.Tanh(),
                               torch.nn.Linear(16, problem.output_dim)).double()


def test_groupings_with_the_data_term():
    burgers = make_problem("burgers", "problem.inverse.enabled=true")
    assert burgers.terms == ("residual", "boundary", "initial", "data")
    assert burgers.groups(2) == (("residual",), ("boundary", "initial", "data"))
    assert burgers.groups(3) == (("residual",), ("boundary", "initial"), ("data",))
    assert burgers.groups(4) == (("residual",), ("boundary",), ("initial",), ("data",))
    kovasznay = make_problem("kovasznay", "problem.inverse.enabled=true")
    assert kovasznay.groups(2) == (("residual",), ("boundary", "data"))
    assert kovasznay.groups(3) == (("residual",), ("boundary",), ("data",))
    forward = make_problem("burgers")
    assert forward.terms == ("residual", "boundary", "initial") and forward.param_groups() == []
    with pytest.raises(ConfigError, match="n_losses=4 is not offered"):
        forward.groups(4)


def test_the_data_term_joins_the_paper_s_concatenated_mean():
    problem = make_problem("burgers", "problem.inverse.enabled=true", "problem.inverse.points=40",
                           "problem.sizes.cpu.points.boundary=10", "problem.sizes.cpu.points.initial=30")
    batches = problem.sample(torch.Generator().manual_seed(0))
    fn = network(problem)
    squares = [(fn(batches[t].inputs) - batches[t].targets).square() for t in ("boundary", "initial", "data")]
    group = problem.group_loss(fn, batches, ("boundary", "initial", "data"))
    assert torch.allclose(group, torch.cat(squares).mean(), rtol=1e-12)
    assert torch.allclose(problem.group_loss(fn, batches, ("data",)), squares[2].mean(), rtol=1e-12)


@pytest.mark.parametrize("name", INVERSE)
def test_observations_are_the_reference_drawn_once_per_seed(name):
    problem = make_problem(name, "problem.inverse.enabled=true", "problem.inverse.points=50")
    data = [LazyBatches(problem, torch.Generator(), seed, iteration)["data"] for seed, iteration in
            ((0, 0), (0, 7), (1, 0))]
    assert data[0].inputs.shape == (50, problem.input_dim)
    assert torch.equal(data[0].inputs, data[1].inputs) and torch.equal(data[0].targets, data[1].targets)
    assert not torch.equal(data[0].inputs, data[2].inputs)
    assert torch.allclose(data[0].targets, problem.exact(data[0].inputs), atol=1e-12)
    assert (data[0].inputs >= problem.box_lower).all() and (data[0].inputs <= problem.box_upper).all()
    residuals = [LazyBatches(problem, torch.Generator(), 0, iteration)["residual"].inputs for iteration in (0, 7)]
    assert not torch.equal(*residuals)  # collocation points are still drawn afresh


@pytest.mark.parametrize("name", INVERSE)
def test_noise_has_the_stated_level_at_the_same_points(name):
    observed = ("problem.inverse.enabled=true", "problem.inverse.points=4000")
    clean, noisy = make_problem(name, *observed), make_problem(name, *observed, "problem.inverse.noise=0.1")
    a, b = (LazyBatches(p, torch.Generator(), 3, 0)["data"] for p in (clean, noisy))
    assert torch.equal(a.inputs, b.inputs)
    ratio = (b.targets - a.targets).std(dim=0) / a.targets.std(dim=0)
    assert torch.allclose(ratio, torch.full_like(ratio, 0.1), rtol=0.05)


@pytest.mark.parametrize("name", INVERSE)
def test_the_trained_parameter_enters_the_pde(name):
    """At the true value the inverse residual is the forward one (the exact solution's is zero);
    the residual loss gives θ = log(parameter) a gradient, the data loss none."""
    unknown, truth, _ = INVERSE[name]
    at_truth = make_problem(name, "problem.inverse.enabled=true", f"problem.inverse.initial={truth}")
    forward = make_problem(name)
    inputs = forward.sample(torch.Generator().manual_seed(0), ("residual",))["residual"].inputs
    fn = network(forward)
    assert torch.allclose(at_truth.pde_residual(fn, inputs), forward.pde_residual(fn, inputs), rtol=1e-12, atol=1e-12)
    assert at_truth.pde_residual(at_truth.exact, inputs).abs().max() < 1e-8
    assert at_truth.coefficient().item() == pytest.approx(truth, rel=1e-14)

    problem = make_problem(name, "problem.inverse.enabled=true")
    (theta,) = problem.param_groups()[0]["params"]
    assert theta.requires_grad and theta.item() == pytest.approx(math.log(INVERSE[name][2]))
    batches = problem.sample(torch.Generator().manual_seed(1))
    assert torch.autograd.grad(problem.group_loss(fn, batches, ("residual",)), theta)[0] != 0
    data = torch.autograd.grad(problem.group_loss(fn, batches, ("data",)), theta, allow_unused=True)[0]
    assert data is None or data == 0


@pytest.mark.parametrize("name", INVERSE)
def test_the_gradient_of_the_unknown_is_the_derivative_of_the_loss(name):
    """∂L/∂θ of the residual loss through the Taylor path equals nested autograd's and the central
    difference (L(θ + h) − L(θ − h)) / 2h, away from the truth (where it is not zero)."""
    problem = make_problem(name, "problem.inverse.enabled=true")
    torch.manual_seed(0)
    fn = MLP(problem.input_dim, problem.output_dim, 16, 3).double()
    batches = problem.sample(torch.Generator().manual_seed(2), ("residual",))
    (theta,) = problem.param_groups()[0]["params"]

    def loss(fast: bool) -> Tensor:
        problem.fast = fast
        return problem.group_loss(fn, batches, ("residual",))

    taylor, autograd = (torch.autograd.grad(loss(fast), theta)[0] for fast in (True, False))
    h, start = 1e-5, theta.item()
    with torch.no_grad():
        theta.fill_(start + h)
    above = loss(False).item()
    with torch.no_grad():
        theta.fill_(start - h)
    below = loss(False).item()
    difference = (above - below) / (2 * h)
    assert abs(difference) > 1e-6
    assert taylor.item() == pytest.approx(autograd.item(), rel=1e-10)
    assert taylor.item() == pytest.approx(difference, rel=1e-6)


def test_own_param_groups_moves_the_unknown_to_a_scaled_group():
    a, b, theta = (torch.zeros(2, requires_grad=True) for _ in range(3))
    optimizer = torch.optim.Adam([a, b, theta], lr=1e-3)
    own_param_groups(optimizer, [{"params": [theta], "lr": 5e-2}], 1e-3)
    assert [g["params"] for g in optimizer.param_groups] == [[a, b], [theta]]
    assert optimizer.param_groups[1]["lr"] == 5e-2 and optimizer.param_groups[1]["lr_scale"] == pytest.approx(50)


def test_the_unknown_steps_at_its_own_learning_rate(tmp_path):
    """Adam's first step moves every parameter by its learning rate: θ by lr × inverse.lr / run lr."""
    cfg = compose_config(*inverse_run("burgers", "method=adam", "budget.iterations=1", "log_every=1",
                                      "problem.inverse.lr=0.03"))
    train(prepare(cfg), tmp_path)
    first = pd.read_csv(tmp_path / records.HISTORY).set_index("iteration").loc[1]
    step = abs(math.log(first["nu"]) - math.log(0.05))
    assert step == pytest.approx(first["lr"] * 0.03 / 1e-3, rel=1e-4)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_trains_the_unknown(tmp_path, method):
    """Burgers with 3 losses, causal training on too: both options compose with every method."""
    setup = prepare(compose_config(*inverse_run("burgers", f"method={method}", "n_losses=3", "problem.causal.chunks=8",
                                                "budget.iterations=3", "log_every=1")))
    assert setup.loss_names == ["residual", "boundary+initial", "data"]
    summary = train(setup, tmp_path)
    history = pd.read_csv(tmp_path / records.HISTORY)
    assert summary["status"] == "completed" and history["nu"].iloc[0] == pytest.approx(0.05)
    assert summary["nu"] != pytest.approx(0.05, rel=1e-6) and summary["nu"] == history["nu"].iloc[-1]
    assert summary["nu_rel_error"] == pytest.approx(abs(summary["nu"] - 0.01 / math.pi) / (0.01 / math.pi))
    assert history.iloc[-1][["loss_data", "causal_weight_min"]].notna().all()  # M-ConFIG: every loss seen by then


def test_a_float64_finishing_phase_trains_and_records_the_unknown(tmp_path):
    """L-BFGS in float64 after float32 Adam: the phase's problem shares θ, converted like the network."""
    args = inverse_run("burgers", "method=adam", "budget.iterations=8", "log_every=1", "finish=lbfgs",
                       "finish.iterations=3", "finish.dtype=float64")
    summary = train(prepare(compose_config(*args)), tmp_path)
    rows = pd.read_csv(tmp_path / records.HISTORY)
    main, phase = rows.loc[rows.phase == "main", "nu"], rows.loc[rows.phase == "finish", "nu"]
    assert summary["status"] == "completed" and len(phase) == 3
    assert phase.iloc[-1] != pytest.approx(main.iloc[-1], rel=1e-9)  # L-BFGS moved θ
    assert summary["nu"] == pytest.approx(phase.iloc[-1], rel=1e-12) and summary["nu"] != pytest.approx(0.05, rel=1e-6)
    checkpoint = records.load_checkpoint(tmp_path / records.CHECKPOINT)["problem"]["log_unknown"]
    assert checkpoint.dtype == torch.float64 and math.exp(checkpoint.item()) == pytest.approx(summary["nu"], rel=1e-12)


@pytest.mark.parametrize("n_losses, method", [(2, "adam"), (3, "config")])
def test_kovasznay_learns_its_reynolds_number(tmp_path, n_losses, method):
    summary = train(prepare(compose_config(*inverse_run("kovasznay", f"method={method}", f"n_losses={n_losses}",
                                                        "budget.iterations=3"))), tmp_path)
    assert summary["losses"] == (["residual", "boundary+data"] if n_losses == 2 else ["residual", "boundary", "data"])
    assert summary["re"] != pytest.approx(20.0, rel=1e-6)
    assert summary["re_rel_error"] == pytest.approx(abs(summary["re"] - 40) / 40)


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("method", ["adam", "mconfig"])
def test_a_resumed_inverse_run_ends_where_an_uninterrupted_one_ends(tmp_path, method):
    """M-ConFIG refreshes one loss per iteration: the causal weights it records are those of the
    last residual evaluated, which the checkpoint keeps too."""
    args = inverse_run("burgers", f"method={method}", "problem.causal.chunks=8", "budget.iterations=24",
                       "checkpoint_every=12", "eval_every=12", "seed=2")
    whole = train(prepare(compose_config(*args)), tmp_path / "whole")

    def interrupt(iteration):
        if iteration == 17:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(prepare(compose_config(*args)), tmp_path / "cut", on_iteration=interrupt)
    resumed = train(prepare(compose_config(*args)), tmp_path / "cut")
    assert resumed["resumed_from"] == 12
    assert resumed["nu"] == whole["nu"] and resumed["test_mse"] == whole["test_mse"]
    a, b = (records.load_checkpoint(tmp_path / run / records.CHECKPOINT) for run in ("whole", "cut"))
    assert torch.equal(a["problem"]["log_unknown"], b["problem"]["log_unknown"])
    h_whole, h_cut = (pd.read_csv(tmp_path / run / records.HISTORY).drop(columns="seconds") for run in ("whole", "cut"))
    pd.testing.assert_frame_equal(h_whole, h_cut)


@pytest.mark.parametrize("override, key", [("problem.inverse.initial=0", "problem.inverse.initial=0"),
                                           ("problem.inverse.lr=-1", "problem.inverse.lr=-1"),
                                           ("problem.inverse.points=0", "problem.inverse.points=0"),
                                           ("problem.inverse.noise=-0.1", "problem.inverse.noise=-0.1")])
def test_bad_options_are_refused(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        prepare(compose_config("problem=burgers", override))


def test_problems_without_an_unknown_have_no_inverse_option():
    cfg = compose_config("problem=schrodinger", "+problem.inverse.enabled=true")
    with pytest.raises(ConfigError, match=r"problem\.inverse is not an option of problem 'schrodinger'"):
        typed_options("problem", cfg.problem)


def test_the_recorded_config_holds_the_inverse_options():
    config = resolved_config(prepare(compose_config("problem=kovasznay", "problem.inverse.enabled=true",
                                                    "problem.inverse.noise=0.01")))
    assert config["problem"]["inverse"] == {"enabled": True, "initial": 20.0, "lr": 0.01, "points": 500, "noise": 0.01}
    assert resolved_config(prepare(compose_config("problem=burgers")))["problem"]["inverse"]["enabled"] is False
