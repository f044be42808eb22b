"""Weighting methods (Adam, LRA, MinMax, ReLoBRaLo, gradient-norm and NTK weighting): weight updates
against values computed by hand on two-loss toy problems, L_0 = θ_0² + 2θ_1² (the "residual") and
L_1 = (θ_0 − 1)², and residuals linear in θ for the NTK."""

from __future__ import annotations

import math

import pytest
import torch

from pinnbench.methods.adam import Adam
from pinnbench.methods.base import MethodOptions
from pinnbench.methods.gradnorm import GradNorm, GradNormOptions
from pinnbench.methods.lra import LRA, LRAOptions
from pinnbench.methods.minmax import MinMax, MinMaxOptions
from pinnbench.methods.ntk import NTK, NTKOptions, ntk_diagonal_mean
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


class Layered:
    """Two weight matrices W [1, 2], V [1, 1] and a bias b [1]: L_0 = W₀² + 2W₁² + 10b² (a large
    bias gradient), L_1 = (W₀ − 1)² + V² + b². At W = (1.5, −0.5), V = 2, b = 1: ∇L_0 = (3, −2 | 0 | 20),
    ∇L_1 = (1, 0 | 4 | 2)."""

    n_losses = 2

    def __init__(self) -> None:
        self.params = [torch.nn.Parameter(torch.tensor([[1.5, -0.5]], dtype=torch.float64)),
                       torch.nn.Parameter(torch.tensor([[2.0]], dtype=torch.float64)),
                       torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))]

    def each(self, indices=None):
        W, V, b = self.params
        values = [W[0, 0] ** 2 + 2 * W[0, 1] ** 2 + 10 * b[0] ** 2, (W[0, 0] - 1) ** 2 + V[0, 0] ** 2 + b[0] ** 2]
        return values if indices is None else [values[i] for i in indices]

    def __call__(self, indices=None):
        return torch.stack(self.each(indices))


def test_lra_code_variant_takes_the_weight_matrices_and_the_weighted_loss():
    """The authors' code: max |∇_W L_0| over the matrices (3, not the bias's 20), the mean of |∇L_1|
    per matrix averaged over the matrices ((0.5 + 4)/2), and λ in the denominator (the gradient of
    λ L_1); every 2nd iteration here, the other one a plain step on L_0 + λ L_1."""
    losses = Layered()
    method = LRA(LRAOptions(name="lra_code", variant="code", beta=0.9, every=2), 2, losses.params)
    lam = 1.0
    for iteration in range(4):
        for p in losses.params:
            p.grad = None
        method.step(losses)
        if iteration % 2 == 0:
            lam = 0.9 * lam + 0.1 * 3.0 / (lam * (0.5 + 4.0) / 2)
        assert weights(method) == pytest.approx([1.0, lam], rel=1e-12)
        grads = [p.grad.reshape(-1) for p in losses.params]
        torch.testing.assert_close(torch.cat(grads), torch.tensor([3.0, -2.0, 0.0, 20.0], dtype=torch.float64)
                                   + lam * torch.tensor([1.0, 0.0, 4.0, 2.0], dtype=torch.float64))
    assert method.state_dict()["count"] == 4


def test_lra_paper_variant_takes_every_parameter():
    losses = Layered()
    method = LRA(LRAOptions(name="lra_paper", variant="paper", beta=0.1), 2, losses.params)
    method.step(losses)  # λ̂ = max(3, 2, 0, 20) / mean(1, 0, 4, 2) = 20 / 1.75
    assert weights(method) == pytest.approx([1.0, 0.1 + 0.9 * 20 / 1.75], rel=1e-12)


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


# ----- gradient-norm and NTK weighting (jaxpi's rule) ----------------------------------------------
def jaxpi_weights(scales: list[float]) -> list[float]:
    """ŵ_i = mean(s) / (s_i + 1e-5 mean(s))."""
    mean = sum(scales) / len(scales)
    return [mean / (s + 1e-5 * mean) for s in scales]


def test_gradnorm_recomputes_at_iterations_1_and_1_plus_every_and_costs_adam_in_between(monkeypatch):
    import pinnbench.methods.gradnorm as gradnorm

    passes = []
    real = gradnorm.gradient_matrix
    monkeypatch.setattr(gradnorm, "gradient_matrix", lambda values, params: passes.append(len(values)) or
                        real(values, params))
    losses = Quadratic()  # g_0 = (3, −2), g_1 = (1, 0): norms √13 and 1
    method = GradNorm(GradNormOptions(momentum=0.9, every=2), 2, [losses.theta])
    g0, g1 = losses.gradients()
    torch.testing.assert_close(step(method, losses), g0 + g1)  # iteration 0: weights 1
    w = [0.9 + 0.1 * x for x in jaxpi_weights([math.sqrt(13), 1.0])]
    for iteration in (1, 2):  # recomputed at 1, kept at 2
        grad = step(method, losses)
        assert weights(method) == pytest.approx(w, rel=1e-12)
        torch.testing.assert_close(grad, w[0] * g0 + w[1] * g1)
    step(method, losses)  # iteration 3 = 1 + every: moves again towards the same target
    w = [0.9 * a + 0.1 * b for a, b in zip(w, jaxpi_weights([math.sqrt(13), 1.0]))]
    assert weights(method) == pytest.approx(w, rel=1e-12)
    assert passes == [2, 2]  # per-loss gradients only at iterations 1 and 3


class LinearResiduals:
    """Residuals linear in θ ∈ R², so that ∂r/∂θ is known: loss 0 has one term r = X θ − y (rows of X:
    (1, 0), (0, 2), (1, 1)); loss 1 has a term (3, 0)·θ − 1 and a two-equation term R = θ_0 A + θ_1 B − 1,
    A = [[1, 0], [2, 1]], B = [[0, 1], [0, 1]]. NTK diagonals: loss 0 (1 + 4 + 2)/3 = 7/3; loss 1
    9/1 + (1 + 1 + 4 + 2)/2 = 13."""

    n_losses = 2

    def __init__(self) -> None:
        self.theta = torch.nn.Parameter(torch.tensor([0.3, -0.7], dtype=torch.float64))
        f64 = dict(dtype=torch.float64)
        self.X, self.y = torch.tensor([[1.0, 0], [0, 2], [1, 1]], **f64), torch.tensor([[0.5], [1], [-1]], **f64)
        self.a = torch.tensor([[3.0, 0]], **f64)
        self.A, self.B = torch.tensor([[1.0, 0], [2, 1]], **f64), torch.tensor([[0.0, 1], [0, 1]], **f64)
        self.residual_calls = 0

    def terms(self, index: int) -> list[torch.Tensor]:
        t = self.theta
        if index == 0:
            return [self.X @ t[:, None] - self.y]
        return [self.a @ t[:, None] - 1, t[0] * self.A + t[1] * self.B - 1]

    def residuals(self, index: int) -> list[torch.Tensor]:
        self.residual_calls += 1
        return self.terms(index)

    def each(self, indices=None):
        values = [sum(r.square().sum(dim=1).mean() for r in self.terms(i)) for i in range(2)]
        return values if indices is None else [values[i] for i in indices]

    def __call__(self, indices=None):
        return torch.stack(self.each(indices))


def test_ntk_weights_use_the_mean_ntk_diagonal_of_each_loss():
    losses = LinearResiduals()
    method = NTK(NTKOptions(momentum=0.9, every=1000, samples=0), 2, [losses.theta])
    step(method, losses)
    assert weights(method) == [1.0, 1.0] and losses.residual_calls == 0
    grad = step(method, losses)  # iteration 1 recomputes
    w = [0.9 + 0.1 * x for x in jaxpi_weights([7 / 3, 13.0])]
    assert weights(method) == pytest.approx(w, rel=1e-12)
    g0, g1 = (torch.autograd.grad(v, losses.theta)[0] for v in losses.each())
    torch.testing.assert_close(grad, w[0] * g0 + w[1] * g1)
    assert losses.residual_calls == 2
    for _ in range(5):  # no recomputation until iteration 1001: the cost of Adam
        step(method, losses)
    assert losses.residual_calls == 2 and weights(method) == pytest.approx(w, rel=1e-12)


def test_ntk_diagonal_from_some_entries_is_n_eq_times_their_mean():
    losses = LinearResiduals()
    R = losses.residuals(1)[1]  # entries in order: (1, 0), (0, 1), (2, 0), (1, 1) → 1, 1, 4, 2
    assert ntk_diagonal_mean(R, [losses.theta]).item() == pytest.approx(8 / 2)
    assert ntk_diagonal_mean(R, [losses.theta], entries=[0, 3]).item() == pytest.approx(2 * (1 + 2) / 2)
    assert ntk_diagonal_mean(R, [losses.theta], entries=[2]).item() == pytest.approx(2 * 4)


def test_ntk_samples_are_drawn_without_replacement_from_its_generator():
    losses = LinearResiduals()
    method = NTK(NTKOptions(samples=3), 2, [losses.theta])
    state = method.generator.get_state()
    drawn = method.entries(10)
    assert len(set(drawn)) == 3 and all(0 <= e < 10 for e in drawn)
    method.generator.set_state(state)
    assert method.entries(10) == drawn
    assert method.entries(3) is None and NTK(NTKOptions(samples=0), 2, [losses.theta]).entries(10) is None


def test_ntk_diagonal_equals_per_sample_gradients_from_torch_func():
    """For a data term r_p = u_θ(x_p) − y_p of a small MLP, against vmap(grad) of each point's residual."""
    from torch.func import functional_call, grad, vmap

    from tests.methods.toy import small_network

    model = small_network()
    x = torch.rand(12, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = torch.sin(x.sum(dim=1, keepdim=True))
    params = dict(model.named_parameters())

    def residual(p, point, target):
        return (functional_call(model, p, (point[None],)) - target).squeeze()

    per_sample = vmap(grad(residual), in_dims=(None, 0, 0))({k: v.detach() for k, v in params.items()}, x, y)
    expected = sum(g.reshape(12, -1).square().sum(dim=1) for g in per_sample.values()).mean()
    ours = ntk_diagonal_mean(model(x) - y, list(model.parameters()))
    torch.testing.assert_close(ours, expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("problem", ["burgers", "schrodinger"])
def test_ntk_diagonal_through_the_fast_derivatives_equals_nested_autograd(problem):
    """The residual's per-entry gradients through the Taylor streams' hand-written backward pass."""
    from pinnbench.network import MLP
    from pinnbench.train import prepare
    from tests.conftest import compose_config, tiny_problem

    setup = prepare(compose_config(f"problem={problem}", *tiny_problem(problem), "dtype=float64", "quiet=true"))
    torch.manual_seed(0)
    model = MLP(setup.problem.input_dim, setup.problem.output_dim, 16, 2).double()
    batches = setup.problem.sample(torch.Generator().manual_seed(0))
    values = {}
    for fast in (True, False):
        setup.problem.fast = fast
        values[fast] = [ntk_diagonal_mean(setup.problem.term_residual(model, batches[t], t), list(model.parameters()))
                        for t in setup.problem.terms]
    torch.testing.assert_close(torch.stack(values[True]), torch.stack(values[False]), rtol=1e-10, atol=0)
