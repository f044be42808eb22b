"""problems/derivatives.py: the fast path (Taylor streams, hand-written backward) gives the numbers of
the straightforward one (nested autograd), for values, derivatives and parameter gradients (float64).

No test compiles anything: the compiled passes are ``_network_passes`` over the ``_fusable_kernels``
functions, checked here by running them eagerly, and ``_Checked``'s fallback is checked with a
stand-in compiler.
"""

from __future__ import annotations

import pytest
import torch

from pinnbench.network import MLP, encoding_for
from problems import derivatives
from problems.derivatives import (AUTOGRAD, COMPILED, TAYLOR, Plan, TaylorMLP, _Checked, _autograd_jet,
                                  _eager_kernels, _fusable_kernels, _lift, _network_passes, _sum_over_points,
                                  _taylor_jet, derivative_mode, jet, taylor_pays)
from tests.problems.conftest import PROBLEMS, make_problem

REQUESTS = {  # (inputs, outputs, first, second, operator)
    "burgers": (2, 1, (0, 1), (0,), None),
    "burgers-operator": (2, 1, (0,), (), {(1,): 1.0, (0, 0): -0.01}),
    "beltrami": (4, 4, (0, 1, 2, 3), (0, 1, 2), None),
    "navier-stokes-operator": (4, 4, (0, 1, 2), (), {(3,): 1.0, (0, 0): -1.0, (1, 1): -1.0, (2, 2): -1.0}),
    "laplacian-only": (2, 3, (0, 1), (), {(0, 0): -0.025, (1, 1): -0.025}),
    "second-without-its-first": (2, 2, (1,), (0,), None),
    "first-only": (2, 2, (0,), (), None),
    "first-order-operator": (3, 2, (2,), (), {(0,): 2.0}),
    "second-only-unsorted": (2, 2, (), (1, 0), None),
    "operator-and-second": (3, 1, (0,), (2,), {(1,): 0.5, (0, 0): 3.0}),
}


def outputs(j, first, second, operator):
    return [j.value, *(j.d(i) for i in first), *(j.dd(i) for i in second), *([j.op] if operator else [])]


def network(n_in: int, n_out: int, seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    return MLP(n_in, n_out, width=16, hidden_layers=4).double()


@pytest.mark.parametrize("name", REQUESTS)
def test_taylor_streams_equal_nested_autograd_values_and_parameter_gradients(name):
    n_in, n_out, first, second, operator = REQUESTS[name]
    net = network(n_in, n_out)
    x = torch.rand(29, n_in, dtype=torch.float64) * 2 - 1
    slow = outputs(_autograd_jet(net, x, first, second, operator), first, second, operator)
    fast = outputs(_taylor_jet(net, x, Plan.of(n_in, first, second, operator), False), first, second, operator)
    for a, b in zip(slow, fast):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)
    weights = [torch.randn_like(a) for a in slow]  # any scalar function of every output

    def gradient(values):
        return torch.autograd.grad(sum((w * v.square()).sum() for w, v in zip(weights, values)), list(net.parameters()))

    for a, b in zip(gradient(slow), gradient(fast)):
        torch.testing.assert_close(b, a, rtol=1e-11, atol=1e-12)


def test_taylor_pass_differentiates_with_respect_to_its_inputs_too():
    net = network(2, 1)
    x = torch.rand(7, 2, dtype=torch.float64, requires_grad=True)
    plan = Plan.of(2, (0,), (), {(1,): 1.0, (0, 0): -0.1})
    torch.autograd.gradcheck(lambda inputs: TaylorMLP.apply(inputs, _lift(plan, inputs), plan, False,
                                                            *net.parameters()), (x,))


@pytest.mark.parametrize("encoding", [dict(standardize=True), dict(periods=(2.0, None)),
                                      dict(standardize=True, periods=(None, 0.5))],
                         ids=["standardized", "periodic", "both"])
@pytest.mark.parametrize("fast", [TAYLOR, COMPILED])
def test_an_input_encoding_gives_the_same_derivatives_and_gradients_on_both_paths(encoding, fast):
    """Standardised and periodic inputs (pinnbench.network.InputEncoding): value, derivatives,
    the operator stream and the gradients with respect to the parameters and to the inputs are
    those of nested autograd through the encoding."""
    torch.manual_seed(5)
    net = MLP(2, 2, 12, 3, encoding=encoding_for((-1.0, 0.0), (1.0, 1.0), **encoding)).double()
    x = (torch.rand(40, 2, dtype=torch.float64) * 1.5 - 0.25).requires_grad_(True)
    request = dict(first=(0, 1), second=(0, 1), operator={(1,): 1.0, (0, 0): -0.3, (1, 1): 0.2})
    slow, quick = jet(net, x, **request, fast=AUTOGRAD), jet(net, x, **request, fast=fast)

    def streams(j):
        return [j.value, j.d(0), j.d(1), j.dd(0), j.dd(1), j.op]

    for a, b in zip(streams(slow), streams(quick)):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-11)
    targets = list(net.parameters()) + [x]
    for a, b in zip(torch.autograd.grad(sum((s**2).sum() for s in streams(slow)), targets),
                    torch.autograd.grad(sum((s**2).sum() for s in streams(quick)), targets)):
        torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-10)


def test_a_periodic_input_makes_the_network_periodic_and_the_standardised_one_is_centred():
    net = MLP(2, 1, 8, 2, encoding=encoding_for((-1.0, 0.0), (1.0, 1.0), standardize=True, periods=(2.0, None))).double()
    x = torch.rand(20, 2, dtype=torch.float64)
    torch.testing.assert_close(net(x), net(x + torch.tensor([2.0, 0.0], dtype=torch.float64)), rtol=0, atol=1e-12)
    features = net.encoding(torch.tensor([[0.3, 0.5], [0.3, 1.0]], dtype=torch.float64))
    assert features.shape == (2, 3)  # cos, sin of x; standardised t
    torch.testing.assert_close(features[:, 2], torch.tensor([0.0, 0.5 * 12**0.5], dtype=torch.float64))
    assert MLP(2, 1, 8, 2).encoding is None


@pytest.mark.parametrize("name", REQUESTS)
@pytest.mark.parametrize("broadcast", [False, True], ids=["hidden-layer", "first-layer"])
def test_fusable_kernels_compute_what_the_eager_kernels_compute(name, broadcast):
    n_in, _, first, second, operator = REQUESTS[name]
    plan = Plan.of(n_in, first, second, operator)
    m_c, n, w = plan.streams - 1, 11, 5
    z = torch.randn(n, w, dtype=torch.float64)
    dZ = torch.randn(m_c, 1 if broadcast else n, w, dtype=torch.float64)
    Hb = torch.randn(plan.streams, n, w, dtype=torch.float64)
    (eager_forward, eager_backward), (fused_forward, fused_backward) = _eager_kernels(plan), _fusable_kernels(plan)
    torch.testing.assert_close(fused_forward(z, dZ), eager_forward(z, dZ), rtol=1e-13, atol=1e-13)
    a = torch.tanh(z)
    torch.testing.assert_close(fused_backward(Hb, a, dZ), eager_backward(Hb, a, dZ), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("name", REQUESTS)
@pytest.mark.parametrize("input_grad", [False, True])
@pytest.mark.parametrize("points, width", [(13, 16), (24, 50)])  # width 50 at 24 points: sums seen as 3 rows of 400
def test_the_passes_that_get_compiled_compute_what_the_eager_passes_compute(name, input_grad, points, width):
    n_in, n_out, first, second, operator = REQUESTS[name]
    plan = Plan.of(n_in, first, second, operator)
    torch.manual_seed(0)
    net = MLP(n_in, n_out, width=width, hidden_layers=4).double()
    params = [p.detach() for linear in net.linears for p in (linear.weight, linear.bias)]
    x = torch.rand(points, n_in, dtype=torch.float64)
    eager = _network_passes(*_eager_kernels(plan))
    fusable = _network_passes(*_fusable_kernels(plan), narrow_products=True)
    (out, activations, streams), (fused_out, fused_activations, fused_streams) = (
        f(x, _lift(plan, x), *params) for f in (eager[0], fusable[0]))
    torch.testing.assert_close(fused_out, out, rtol=1e-13, atol=1e-13)
    for a, b in zip(activations + streams, fused_activations + fused_streams, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-13, atol=1e-13)
    grad = torch.randn_like(out)
    backward = [f(grad, x, _lift(plan, x), params[0::2], activations, streams, input_grad) for f in (eager[1], fusable[1])]
    for a, b in zip(backward[0][1], backward[1][1], strict=True):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-13)
    if input_grad:
        torch.testing.assert_close(backward[1][0], backward[0][0], rtol=1e-12, atol=1e-13)
    else:
        assert backward[0][0] is None and backward[1][0] is None


@pytest.mark.parametrize("name", PROBLEMS)
def test_every_term_and_its_parameter_gradient_is_the_same_on_both_paths(name):
    problem = make_problem(name)
    torch.manual_seed(1)
    net = MLP(problem.input_dim, problem.output_dim, 20, 3).double()
    batches = {term: problem.sample_term(term, 24, torch.Generator().manual_seed(2)) for term in problem.terms}
    for term in problem.terms:
        results = {}
        for fast in (False, True):
            problem.fast = fast
            residual = problem.term_residual(net, batches[term], term)
            results[fast] = (residual, torch.autograd.grad(residual.square().mean(), list(net.parameters()),
                                                           allow_unused=True, materialize_grads=True))
        torch.testing.assert_close(results[True][0], results[False][0], rtol=1e-11, atol=1e-11, msg=term)
        for a, b in zip(results[False][1], results[True][1]):
            torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-11, msg=term)


def test_jet_returns_only_what_was_asked_and_the_operator():
    net = network(2, 1)
    x = torch.rand(5, 2, dtype=torch.float64)
    for fast in (False, True):
        j = jet(net, x, first=(1,), second=(0,), operator={(0, 0): 2.0}, fast=fast)
        assert set(j.first) == {1} and set(j.second) == {0}
        torch.testing.assert_close(j.op, 2.0 * j.dd(0))
        assert jet(net, x, first=(0,), fast=fast).op is None


def test_cost_rule_takes_taylor_for_residuals_and_autograd_for_a_scalar_gradient(monkeypatch):
    assert taylor_pays(Plan.of(2, (0,), (), {(1,): 1.0, (0, 0): -0.01}), n_outputs=1)  # Burgers: 3 ≤ 4
    assert taylor_pays(Plan.of(4, (0, 1, 2), (), {(3,): 1, (0, 0): -1, (1, 1): -1, (2, 2): -1}), n_outputs=4)
    assert taylor_pays(Plan.of(2, (0,), (), None), n_outputs=2)  # Schrödinger's boundary: 2 ≤ 3
    assert not taylor_pays(Plan.of(2, (0, 1), (), None), n_outputs=1)  # ∇ of a scalar: one reverse pass
    net = network(2, 1)
    monkeypatch.setattr(derivatives, "_taylor_jet", lambda *a: pytest.fail("Taylor taken against the rule"))
    jet(net, torch.rand(4, 2, dtype=torch.float64), first=(0, 1), fast=True)


def test_mixed_second_derivatives_and_bad_indices_are_refused():
    net = network(2, 1)
    x = torch.rand(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="pure"):
        jet(net, x, operator={(0, 1): 1.0})
    with pytest.raises(ValueError, match="out of range"):
        jet(net, x, first=(2,))
    with pytest.raises(ValueError, match="fast="):
        jet(net, x, first=(0,), fast="quick")


def test_derivative_mode_from_fast_compile_and_budget():
    assert derivative_mode(False, "true", 10**6) == AUTOGRAD
    assert derivative_mode(True, "false", 10**6) == TAYLOR
    assert derivative_mode(True, "true", 10) == COMPILED
    assert derivative_mode(True, "auto", 500) == TAYLOR  # tests and short runs never compile
    assert derivative_mode(True, "auto", derivatives.AUTO_COMPILE_ITERATIONS) == COMPILED
    assert derivative_mode(True, "auto", None, seconds=derivatives.AUTO_COMPILE_SECONDS) == COMPILED


def test_a_failing_or_wrong_compiler_falls_back_to_the_eager_kernel(monkeypatch):
    def eager(x):
        return 2 * x

    x = torch.arange(4.0)

    def failing(fn, **kwargs):
        def compiled(*args):
            raise RuntimeError("no C++ compiler")
        return compiled

    monkeypatch.setattr(torch, "compile", failing)
    kernel = _Checked(eager, eager, "test")
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler"):
        torch.testing.assert_close(kernel(x), 2 * x)
    torch.testing.assert_close(kernel(x), 2 * x)  # stays eager, no second warning

    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: (lambda *args: 3 * args[0]))
    kernel = _Checked(eager, eager, "test")
    with pytest.warns(RuntimeWarning, match="differs"):
        torch.testing.assert_close(kernel(x), 2 * x)
    assert kernel.compiled is None

    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: fn)
    kernel = _Checked(eager, eager, "test")
    torch.testing.assert_close(kernel(x), 2 * x)
    assert kernel.compiled is not None


def test_a_pass_is_checked_tensor_by_tensor_through_its_nested_result(monkeypatch):
    def eager(x, flag):
        return x + 1, [2 * x, 3 * x], (None if flag else x)

    x = torch.arange(4.0)
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: fn)
    checked = _Checked(eager, eager, "pass")
    assert checked(x, True)[2] is None and checked.compiled is not None
    off = lambda x, flag: (x + 1, [2 * x, 3 * x + 0.1], None if flag else x)  # noqa: E731
    for wrong in (off, lambda x, flag: (x + 1, [2 * x], None), lambda x, flag: (x + 1, [2 * x, 3 * x], x)):
        monkeypatch.setattr(torch, "compile", lambda fn, wrong=wrong, **kwargs: wrong)
        checked = _Checked(eager, eager, "pass")
        with pytest.warns(RuntimeWarning, match="differs"):
            result = checked(x, True)
        assert checked.compiled is None and result[2] is None
        torch.testing.assert_close(result[1][1], 3 * x)


def test_compiled_kernels_specialise_on_shapes_and_may_meet_many_layouts(monkeypatch):
    """Static shapes: one specialisation per layout; the recompile limit leaves room for a bench of
    every problem in one process (past the limit dynamo would run the kernels uncompiled)."""
    seen = {}
    monkeypatch.setattr(torch._dynamo.config, "recompile_limit", 8)
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: seen.update(kwargs) or fn)
    _Checked(lambda x: x, lambda x: x, "test")
    assert seen["dynamic"] is False and derivatives.DYNAMIC_SHAPES is False
    assert torch._dynamo.config.recompile_limit >= 32


@pytest.mark.parametrize("shape", [(24, 50), (3, 24, 50), (13, 50), (24, 16), (2, 12, 20), (1, 50)])
def test_sums_over_points_are_plain_sums_however_the_rows_are_seen(shape):
    t = torch.randn(shape, dtype=torch.float64)
    torch.testing.assert_close(_sum_over_points(t), t.sum(-2), rtol=1e-14, atol=1e-14)
