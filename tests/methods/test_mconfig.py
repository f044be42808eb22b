"""M-ConFIG: step by step against the official ``PseudoMomentumOperator``, the refresh schedule,
the zero start, and exact continuation from its state."""

from __future__ import annotations

import copy

import pytest
import torch
from conflictfree.grad_operator import ConFIGOperator
from conflictfree.momentum_operator import PseudoMomentumOperator
from conflictfree.utils import apply_gradient_vector, get_gradient_vector
from conflictfree.weight_model import EqualWeight

from pinnbench.methods.mconfig import MConFIG, MConFIGOptions
from tests.methods.toy import ToyLosses, flat_gradient, flat_parameters, small_network

LR, STEPS = 1e-2, 50


class EqualWeightInGradientDtype(EqualWeight):
    """The package's equal weights, in the gradients' dtype (it makes float32 ones, which its
    least-squares solve cannot mix with float64 gradients)."""

    def get_weights(self, gradients, losses=None, device=None):
        return super().get_weights(gradients, losses, device).to(gradients.dtype)


def official_trajectory(k: int, dtype: torch.dtype) -> list[torch.Tensor]:
    model = small_network(dtype=dtype)
    losses = ToyLosses(model, k)
    operator = PseudoMomentumOperator(num_vectors=k, gradient_operator=ConFIGOperator(EqualWeightInGradientDtype()))
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    trajectory = []
    for step in range(STEPS):
        optimizer.zero_grad()
        index = (step + 1) % k  # the paper's iteration count starts at 1
        losses.loss(index).backward()
        apply_gradient_vector(model, operator.calculate_gradient(index, get_gradient_vector(model)))
        optimizer.step()
        trajectory.append(flat_parameters(model))
    return trajectory


def our_trajectory(k: int, dtype: torch.dtype, **options) -> tuple[list[torch.Tensor], ToyLosses]:
    model = small_network(dtype=dtype)
    losses = ToyLosses(model, k)
    method = MConFIG(MConFIGOptions(name="mconfig", **options), k, list(model.parameters()))
    optimizer = method.make_optimizer(LR)
    trajectory = []
    for _ in range(STEPS):
        optimizer.zero_grad(set_to_none=True)
        method.step(losses)
        optimizer.step()
        trajectory.append(flat_parameters(model))
    return trajectory, losses


@pytest.mark.parametrize("k, dtype, rtol", [(2, torch.float64, 1e-10), (3, torch.float64, 1e-10),
                                             (4, torch.float64, 1e-10), (2, torch.float32, 1e-5),
                                             (3, torch.float32, 1e-5)])
def test_matches_the_official_pseudo_momentum_operator_step_by_step(k, dtype, rtol):
    ours, losses = our_trajectory(k, dtype)
    official = official_trajectory(k, dtype)
    start = flat_parameters(small_network(dtype=dtype))
    assert (ours[-1] - start).norm() > 0.1 * start.norm()  # the parameters did move
    for step, (a, b) in enumerate(zip(ours, official)):
        assert float((a - b).norm() / b.norm()) < rtol, step
    assert losses.calls == [[(i + 1) % k] for i in range(STEPS)]


def test_the_update_is_zero_until_every_loss_has_been_seen():
    model = small_network()
    losses = ToyLosses(model, 3)
    method = MConFIG(MConFIGOptions(), 3, list(model.parameters()))
    for _ in range(2):
        method.step(losses)
        assert (flat_gradient(method.params) == 0).all()
    method.step(losses)
    assert (flat_gradient(method.params) != 0).any()


def test_refreshes_several_losses_in_turn_and_evaluates_only_those():
    model = small_network()
    losses = ToyLosses(model, 3)
    method = MConFIG(MConFIGOptions(refresh=2, start=0), 3, list(model.parameters()))
    for _ in range(4):
        method.step(losses)
    assert losses.calls == [[0, 1], [2, 0], [1, 2], [0, 1]]
    assert method.counts == [3, 3, 2]


@pytest.mark.parametrize("k, start, expected", [(2, 1, [1, 0, 1, 0]), (3, 1, [1, 2, 0, 1]), (3, 0, [0, 1, 2, 0])])
def test_the_cyclic_order_starts_where_the_paper_does_by_default(k, start, expected):
    model = small_network()
    losses = ToyLosses(model, k)
    method = MConFIG(MConFIGOptions(start=start), k, list(model.parameters()))
    for _ in range(4):
        method.step(losses)
    assert losses.calls == [[i] for i in expected]


def test_random_order_draws_distinct_losses_from_its_generator():
    _, losses = our_trajectory(4, torch.float64, refresh=2, order="random")
    assert all(len(set(c)) == 2 for c in losses.calls)
    assert len({tuple(c) for c in losses.calls}) > 2


def test_plain_sgd_applies_the_update():
    model = small_network()
    optimizer = MConFIG(MConFIGOptions(), 2, list(model.parameters())).make_optimizer(LR)
    assert type(optimizer) is torch.optim.SGD and optimizer.defaults["momentum"] == 0


@pytest.mark.parametrize("order", ["cyclic", "random"])
def test_resuming_from_the_state_continues_exactly(order):
    model = small_network()
    losses = ToyLosses(model, 3)
    method = MConFIG(MConFIGOptions(order=order), 3, list(model.parameters()))
    optimizer = method.make_optimizer(LR)

    def run(method, optimizer, steps):
        grads = []
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            method.step(losses)
            grads.append(flat_gradient(method.params).clone())
            optimizer.step()
        return grads

    run(method, optimizer, 7)
    saved_model, saved_state = copy.deepcopy(model.state_dict()), copy.deepcopy(method.state_dict())
    uninterrupted = run(method, optimizer, 10)
    model.load_state_dict(saved_model)
    resumed = MConFIG(MConFIGOptions(order=order), 3, list(model.parameters()))
    resumed.load_state_dict(saved_state)
    continued = run(resumed, resumed.make_optimizer(LR), 10)
    assert all(torch.equal(a, b) for a, b in zip(continued, uninterrupted))
