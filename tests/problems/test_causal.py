"""Causal training (Wang, Sankaran, Perdikaris 2024): time chunks, weights, gradient, the loss it
gives (jaxpi's when the chunks are equal), off = today's loss, refused on steady problems."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from pinnbench import records
from pinnbench.errors import ConfigError
from pinnbench.train import prepare, resolved_config, train
from problems.base import LazyBatches, causal_residual, causal_weights, chunk_ids, chunk_losses
from tests.conftest import compose_config, tiny_problem
from tests.problems.conftest import make_problem

TIME_DEPENDENT = ("burgers", "schrodinger", "beltrami")


def network(problem) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(problem.input_dim, 16), torch.nn.Tanh(),
                               torch.nn.Linear(16, problem.output_dim)).double()


def test_weights_on_hand_made_chunk_losses():
    weights = causal_weights(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64), epsilon=0.5)
    assert torch.allclose(weights, torch.tensor([1.0, math.exp(-0.5), math.exp(-1.5)], dtype=torch.float64))
    # two equations: each its own weights, the smaller one per chunk
    two = torch.tensor([[1.0, 0.0], [2.0, 5.0], [3.0, 1.0]], dtype=torch.float64)
    expected = torch.tensor([1.0, min(math.exp(-1.0), 1.0), min(math.exp(-3.0), math.exp(-5.0))], dtype=torch.float64)
    assert torch.allclose(causal_weights(two, epsilon=1.0), expected)
    assert torch.equal(causal_weights(two, epsilon=0.0), torch.ones(3, dtype=torch.float64))


def test_chunk_losses_average_each_chunk():
    squares = torch.tensor([[1.0], [3.0], [10.0], [4.0], [6.0]])
    ids = torch.tensor([0, 0, 2, 1, 1])
    assert torch.equal(chunk_losses(squares, ids, 3), torch.tensor([[2.0], [5.0], [10.0]]))


def test_chunks_follow_time_order_and_are_equally_large():
    t = torch.rand(103, generator=torch.Generator().manual_seed(1))
    ids = chunk_ids(t, 10)
    order = torch.argsort(t)
    assert torch.all(ids[order].diff() >= 0)  # later times never in an earlier chunk
    sizes = torch.bincount(ids, minlength=10)
    assert sizes.min() >= 10 and sizes.max() <= 11 and sizes.sum() == 103


@pytest.mark.parametrize("name", TIME_DEPENDENT)
def test_latin_hypercube_chunks_are_equal_time_intervals(name):
    """With M dividing N, chunk k holds exactly the residual points with t in [kT/M, (k+1)T/M)."""
    problem = make_problem(name, "problem.sizes.cpu.points.residual=64", "problem.causal.chunks=8")
    inputs = problem.sample(torch.Generator().manual_seed(3), ("residual",))["residual"].inputs
    column = problem.input_names.index("t")
    t, start, end = inputs[:, column], problem.lower[column], problem.upper[column]
    interval = torch.floor((t - start) / (end - start) * 8).long()
    assert torch.equal(chunk_ids(t, 8), interval)


def test_weights_carry_no_gradient():
    """∂/∂r_i of mean_i Σ_c (√w r)² is 2 w_{k(i)} r_i / N: the weights are constants."""
    generator = torch.Generator().manual_seed(0)
    residual = torch.randn(12, 2, generator=generator, dtype=torch.float64, requires_grad=True)
    t = torch.rand(12, generator=generator, dtype=torch.float64)
    weighted, weights = causal_residual(residual, t, 4, epsilon=2.0)
    weighted.square().sum(dim=1).mean().backward()
    assert weights.min() < 0.5  # the weights are far from 1, so a gradient through them would show
    assert torch.allclose(residual.grad, 2 * weights[chunk_ids(t, 4)][:, None] * residual.detach() / 12)


@pytest.mark.parametrize("name", TIME_DEPENDENT)
def test_the_causal_loss_is_jaxpi_s_when_chunks_are_equal(name):
    """jaxpi: sort by t, reshape into M chunks, l_k = mean r², w = exp(−ε Σ_{j<k} l_j), loss = mean(w l).
    For several equations the smallest weight over equations (its Navier–Stokes examples)."""
    chunks, epsilon = 8, 0.7
    problem = make_problem(name, "problem.sizes.cpu.points.residual=64", f"problem.causal.chunks={chunks}",
                           f"problem.causal.epsilon={epsilon}")
    batch = problem.sample(torch.Generator().manual_seed(2), ("residual",))["residual"]
    fn = network(problem)
    loss = problem.term_loss(fn, batch, "residual")

    raw = problem.pde_residual(fn, batch.inputs).detach()
    t = batch.inputs[:, problem.input_names.index("t")]
    per_chunk = raw[torch.argsort(t)].square().reshape(chunks, -1, raw.shape[1]).mean(dim=1)  # [M, equations]
    weights = torch.stack([torch.exp(-epsilon * per_chunk[:k].sum(dim=0)).min() for k in range(chunks)])
    expected = sum((weights * per_chunk[:, c]).mean() for c in range(raw.shape[1]))
    assert torch.allclose(loss, expected, rtol=1e-12)
    assert torch.allclose(problem.causal_weights, weights, rtol=1e-12)
    assert problem.record()["causal_weight_min"] == problem.causal_weights[-1]  # weights never rise with time


@pytest.mark.parametrize("name", TIME_DEPENDENT)
def test_off_is_today_s_loss_exactly(name):
    batch_points = ("problem.sizes.cpu.points.residual=64",)
    problem = make_problem(name, *batch_points)
    assert problem.options.causal.chunks == 0
    batch = problem.sample(torch.Generator().manual_seed(4), ("residual",))["residual"]
    fn = network(problem)
    today = problem.pde_residual(fn, batch.inputs).square().mean(dim=0).sum()
    assert torch.equal(problem.term_loss(fn, batch, "residual"), today)
    assert problem.record() == {}
    flat = make_problem(name, *batch_points, "problem.causal.chunks=8", "problem.causal.epsilon=0")
    assert torch.equal(flat.term_loss(fn, batch, "residual"), today)  # every weight 1


def test_kovasznay_is_refused():
    with pytest.raises(ConfigError, match=r"problem\.causal\.chunks=8: .*'kovasznay' is steady"):
        prepare(compose_config("problem=kovasznay", "problem.causal.chunks=8"))


@pytest.mark.parametrize("override, key", [("problem.causal.chunks=-1", "problem.causal.chunks=-1"),
                                           ("problem.causal.epsilon=-0.5", "problem.causal.epsilon=-0.5"),
                                           ("problem.causal.chunks=65", "problem.causal.chunks=65")])
def test_bad_options_are_refused(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        prepare(compose_config("problem=burgers", "problem.sizes.cpu.points.residual=64", override))


def test_lazy_batches_give_the_chunked_points_every_method_sees():
    problem = make_problem("burgers", "problem.sizes.cpu.points.residual=64", "problem.causal.chunks=4")
    first = LazyBatches(problem, torch.Generator(), 0, 5)["residual"]
    again = LazyBatches(problem, torch.Generator(), 0, 5)["residual"]
    assert torch.equal(first.inputs, again.inputs)


def test_the_history_records_the_smallest_weight_and_the_config_the_option(tmp_path):
    cfg = compose_config("problem=burgers", "method=adam", *tiny_problem("burgers"), "problem.causal.chunks=8",
                         "budget.iterations=3", "log_every=1", "quiet=true", "plot=false")
    summary = train(prepare(cfg), tmp_path)
    history = pd.read_csv(tmp_path / records.HISTORY)
    recorded = history.loc[history.iteration > 0, "causal_weight_min"]
    assert len(recorded) == 3 and ((recorded > 0) & (recorded < 1)).all()
    assert summary["config"]["problem"]["causal"] == {"chunks": 8, "epsilon": 1.0}
    assert resolved_config(prepare(compose_config("problem=burgers")))["problem"]["causal"] == {"chunks": 0,
                                                                                              "epsilon": 1.0}
