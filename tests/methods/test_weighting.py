"""Weighting methods (Adam, LRA, MinMax, ReLoBRaLo): weight updates against values computed by
hand on a two-loss toy problem, L_0 = θ_0² + 2θ_1² (the "residual") and L_1 = (θ_0 − 1)²."""

from __future__ import annotations

import math

import pytest
import torch

from pinnbench.methods.adam import Adam
from pinnbench.methods.base import MethodOptions
from pinnbench.methods.lra import LRA, LRAOptions
from pinnbench.methods.minmax import MinMax, MinMaxOptions
from pinnbench.methods.relobralo import ReLoBRaLo, ReLoBRaLoOptions


class Quadratic:
    """The two toy losses of one parameter vector θ ∈ R²; ``at(θ)`` moves θ."""

    n_losses = 2

    def __init__(self, theta=(1.5, -0.5)) -> None:
        self.theta = torch.nn.Parameter(torch.tensor(theta, dtype=torch.float64))

    def at(self, theta) -> "Quadratic":
        with torch.no_grad():
            self.theta.copy_(torch.tensor(theta, dtype=torch.float64))
        self.theta.grad = None
        return self

    def each(self, indices=None):
        t = self.theta
        values = [t[0] ** 2 + 2 * t[1] ** 2, (t[0] - 1) ** 2]
        return values if indices is None else [values[i] for i in indices]

    def __call__(self, indices=None):
        return torch.stack(self.each(indices))

    def gradients(self) -> tuple[torch.Tensor, torch.Tensor]:
        t = self.theta.detach()
        return torch.stack([2 * t[0], 4 * t[1]]), torch.stack([2 * (t[0] - 1), torch.zeros_like(t[0])])


def step(method, losses: Quadratic) -> torch.Tensor:
    """One method step; returns the gradient it set."""
    losses.theta.grad = None
    method.step(losses)
    return losses.theta.grad.detach().clone()


def weights(method) -> list[float]:
    return method.record()["weight"].tolist()


def test_adam_keeps_equal_weights():
    losses = Quadratic()
    method = Adam(MethodOptions(name="adam"), 2, [losses.theta])
    g0, g1 = losses.gradients()
    torch.testing.assert_close(step(method, losses), g0 + g1)
    assert weights(method) == [1.0, 1.0]


@pytest.mark.parametrize("beta, expected", [(0.999, [1.005, 0.999 * 1.005 + 0.001 * 6]),
                                            (0.5, [3.5, 4.75])])
def test_lra_weight_tracks_max_residual_gradient_over_mean_gradient(beta, expected):
    # θ = (1.5, −0.5): g_0 = (3, −2), g_1 = (1, 0); max|g_0| / mean|g_1| = 3 / 0.5 = 6.
    losses = Quadratic()
    method = LRA(LRAOptions(name="lra", beta=beta), 2, [losses.theta])
    g0, g1 = losses.gradients()
    for want in expected:
        grad = step(method, losses)
        assert weights(method) == pytest.approx([1.0, want], rel=1e-12)
        torch.testing.assert_close(grad, g0 + want * g1)


def hand_adam(gradients: list[float], lr: float = 1e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
    """Adam's total displacement of one scalar after the given gradients."""
    m = v = position = 0.0
    for t, g in enumerate(gradients, start=1):
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        position -= lr * (m / (1 - b1**t)) / (math.sqrt(v / (1 - b2**t)) + eps)
    return position


def test_minmax_ascends_the_softmax_weighted_loss_with_adam():
    losses = Quadratic()  # L = (2.75, 0.25)
    method = MinMax(MinMaxOptions(name="minmax"), 2, [losses.theta])
    g0, g1 = losses.gradients()
    torch.testing.assert_close(step(method, losses), g0 + g1)  # first iteration: weights 1, no ascent
    assert weights(method) == [1.0, 1.0]
    # Second: s = (½, ½), ∂(−2 Σ s_i L_i)/∂w = −2 s (L − s·L) = (−1.25, 1.25) → Adam moves w by ∓lr.
    grad = step(method, losses)
    w0, w1 = 1 + hand_adam([-1.25]), 1 + hand_adam([1.25])
    assert weights(method) == pytest.approx([w0, w1], rel=1e-12)
    assert w0 == pytest.approx(1.001, rel=1e-7)
    torch.testing.assert_close(grad, w0 * g0 + w1 * g1)
    # Third: the softmax of the new weights shapes the next ascent gradient.
    s0 = 1 / (1 + math.exp(w1 - w0))
    mean = s0 * 2.75 + (1 - s0) * 0.25
    d0, d1 = -2 * s0 * (2.75 - mean), -2 * (1 - s0) * (0.25 - mean)
    step(method, losses)
    assert weights(method) == pytest.approx([1 + hand_adam([-1.25, d0]), 1 + hand_adam([1.25, d1])], rel=1e-12)


def balance(now: tuple[float, float], then: tuple[float, float], tau: float = 0.1) -> list[float]:
    """2 · softmax(L(t) / (τ L(t')))."""
    e = [math.exp(a / (tau * b)) for a, b in zip(now, then)]
    return [2 * x / sum(e) for x in e]


@pytest.mark.parametrize("rho", [1.0, 0.0])
def test_relobralo_balances_loss_ratios_with_look_back(rho):
    losses = Quadratic()
    method = ReLoBRaLo(ReLoBRaLoOptions(name="relobralo", beta=0.9, rho=rho), 2, [losses.theta])
    L_a, L_b, L_c = (2.75, 0.25), (0.75, 0.25), (0.125, 1.0)  # at θ_a = (1.5, −0.5), θ_b, θ_c below
    g0, g1 = losses.gradients()
    torch.testing.assert_close(step(method, losses), g0 + g1)
    assert weights(method) == [1.0, 1.0]

    step(method, losses.at((0.5, 0.5)))
    history = [1.0, 1.0] if rho == 1 else balance(L_b, L_a)
    w = [0.9 * h + 0.1 * x for h, x in zip(history, balance(L_b, L_a))]
    assert weights(method) == pytest.approx(w, rel=1e-12)

    grad = step(method, losses.at((0.0, 0.25)))
    history = w if rho == 1 else balance(L_c, L_a)
    w = [0.9 * h + 0.1 * x for h, x in zip(history, balance(L_c, L_b))]
    assert weights(method) == pytest.approx(w, rel=1e-12)
    g0, g1 = losses.gradients()
    torch.testing.assert_close(grad, w[0] * g0 + w[1] * g1)


def test_relobralo_look_back_draws_come_from_its_generator():
    def draws(seed):
        torch.manual_seed(seed)
        losses = Quadratic()
        method = ReLoBRaLo(ReLoBRaLoOptions(rho=0.5), 2, [losses.theta])
        out = []
        for i in range(12):
            step(method, losses.at((1.5 + 0.1 * i, -0.5 - 0.1 * i)))
            out.append(tuple(weights(method)))
        return out

    assert draws(0) == draws(0) and draws(0) != draws(1)
