"""Every problem's PDE, boundary and initial terms, derivatives and groupings (float64).

Parametrised over ``PROBLEMS``: a new problem gets the battery by one line in conftest.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pinnbench.errors import ConfigError
from pinnbench.network import MLP
from pinnbench.train import prepare
from problems.derivatives import jet
from tests.conftest import compose_config
from tests.problems.conftest import CLOSED_FORM, PROBLEMS, beltrami_np, kovasznay_np, make_problem

ROUND_OFF = 1e-10
"""Largest residual allowed for an exact solution (float64; the terms themselves are up to ~10²)."""


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def soliton(amplitude: float, sign: int = 1):
    """h = a sech(a x) exp(i a² t/2), an exact solution of i h_t + ½ h_xx + |h|² h = 0 (sign = −1:
    its complex conjugate, which solves the equation with the opposite sign of i h_t)."""

    def fn(inputs: torch.Tensor) -> torch.Tensor:
        x, t = inputs[:, :1], inputs[:, 1:]
        envelope, phase = amplitude / torch.cosh(amplitude * x), sign * amplitude**2 * t / 2
        return torch.cat([envelope * torch.cos(phase), envelope * torch.sin(phase)], dim=1)

    return fn


def kink(epsilon: float = 1e-4):
    """u = tanh(x √(5/2ε)), a steady solution of u_t − ε u_xx + 5u³ − 5u = 0 (Allen–Cahn)."""
    return lambda inputs: torch.tanh(math.sqrt(5 / (2 * epsilon)) * inputs[:, :1]) + 0 * inputs[:, 1:]


def exact_solution(problem):
    """A closed-form solution of the problem's PDE: its exact solution, or one of another initial value."""
    return {"schrodinger": soliton(1.5), "allen_cahn": kink()}.get(problem.name, problem.exact)


def perturbed(fn, size: float = 1e-2):
    """fn plus a smooth field that solves none of the equations (and is not divergence-free)."""

    def wrong(inputs: torch.Tensor) -> torch.Tensor:
        values = fn(inputs)
        bump = size * torch.sin(inputs.sum(dim=1, keepdim=True) + 0.3)
        return values + bump * torch.arange(1, values.shape[1] + 1, dtype=values.dtype)

    return wrong


def random_network(problem, seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    return MLP(problem.input_dim, problem.output_dim, problem.size.width, problem.size.hidden_layers).double()


# ----- the PDE ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", PROBLEMS)
def test_the_exact_solution_zeroes_every_residual_equation(name):
    problem = make_problem(name)
    points = problem.sample_term("residual", 400, generator()).inputs
    residual = problem.pde_residual(exact_solution(problem), points)
    assert residual.shape == (len(points), residual.shape[1]) and residual.dtype == torch.float64
    worst = residual.abs().amax(dim=0)
    assert (worst < ROUND_OFF).all(), f"{name}: largest residual per equation {worst.tolist()}"
    # ... and each equation notices a field that is not a solution
    wrong = problem.pde_residual(perturbed(exact_solution(problem)), points).abs().amax(dim=0)
    assert (wrong > 1e-4).all(), f"{name}: residual of a perturbed field per equation {wrong.tolist()}"


def test_schrodinger_sign_convention_is_i_h_t_plus_half_h_xx():
    problem = make_problem("schrodinger")
    points = problem.sample(generator(), ("residual",))["residual"].inputs
    assert problem.pde_residual(soliton(2.0), points).abs().max() < ROUND_OFF
    assert problem.pde_residual(soliton(2.0, sign=-1), points).abs().max() > 1.0


def test_navier_stokes_equations_are_the_papers_columns():
    """Kovasznay: momentum x, momentum y, continuity; Beltrami: momentum x, y, z, continuity."""
    for name, columns in (("kovasznay", 3), ("beltrami", 4)):
        problem = make_problem(name)
        points = problem.sample(generator(), ("residual",))["residual"].inputs[:50]
        assert problem.pde_residual(problem.exact, points).shape == (50, columns)
        # a field with only a pressure gradient p = x: momentum x is 1, the rest 0
        def pressure_only(inputs, problem=problem):
            curved_zero = 0 * inputs.square().sum(dim=1, keepdim=True)  # every output depends on x
            return curved_zero + torch.nn.functional.pad(inputs[:, :1], (problem.output_dim - 1, 0))
        residual = problem.pde_residual(pressure_only, points)
        expected = torch.zeros(columns, dtype=torch.float64)
        expected[0] = 1.0
        torch.testing.assert_close(residual, expected.expand_as(residual), atol=1e-12, rtol=0)


def test_beltrami_closed_form_solves_navier_stokes_for_any_a_d_and_nu():
    """Ethier–Steinman: ∇×u = d u and p = −|u|²/2, for a ≠ d and ν ≠ 1 too."""
    problem = make_problem("beltrami", "problem.a=0.7", "problem.d=1.3", "problem.nu=0.4")
    points = problem.sample_term("residual", 200, generator()).inputs
    assert problem.pde_residual(problem.exact, points).abs().max() < ROUND_OFF
    fields = problem.exact(points)
    torch.testing.assert_close(fields[:, 3], -0.5 * fields[:, :3].square().sum(dim=1), rtol=0, atol=1e-12)


# ----- boundary and initial terms ---------------------------------------------------------------
@pytest.mark.parametrize("name", CLOSED_FORM)
def test_boundary_and_initial_terms_vanish_on_the_exact_solution(name):
    problem = make_problem(name)
    batches = problem.sample(generator(1))
    for term in problem.terms:
        if term == "residual":
            continue
        residual = problem.term_residual(problem.exact, batches[term], term)
        assert residual.abs().max() < 1e-12, f"{name}.{term}"
        assert problem.term_loss(perturbed(problem.exact), batches[term], term) > 1e-6


def independent_targets(name: str, inputs: np.ndarray, term: str) -> np.ndarray:
    x = inputs[:, 0]
    if name == "burgers":
        return np.zeros((len(x), 1)) if term == "boundary" else -np.sin(np.pi * x)[:, None]
    if name == "schrodinger":
        return np.stack([2 / np.cosh(x), np.zeros_like(x)], axis=1)
    if name == "kovasznay":
        return kovasznay_np(x, inputs[:, 1])
    if name == "helmholtz":
        return (np.sin(np.pi * x) * np.sin(4 * np.pi * inputs[:, 1]))[:, None]
    if name == "wave":
        if term == "initial":
            return (np.sin(np.pi * x) + 0.5 * np.sin(4 * np.pi * x))[:, None]
        return np.zeros((len(x), 1))
    if name == "allen_cahn":
        return (x**2 * np.cos(np.pi * x))[:, None]
    if name == "klein_gordon":
        t = inputs[:, 1]
        if term == "initial":  # u(x, 0) = x, u_t(x, 0) = 0
            return np.stack([x, np.zeros_like(x)], axis=1)
        return (x * np.cos(5 * np.pi * t) + (x * t) ** 3)[:, None]
    return beltrami_np(*inputs.T)


@pytest.mark.parametrize("name", PROBLEMS)
def test_points_lie_where_their_term_says_and_data_are_the_true_values(name):
    problem = make_problem(name)
    lower, upper = np.array(problem.lower), np.array(problem.upper)
    batches = problem.sample(generator(2))
    for term, batch in batches.items():
        inputs = batch.inputs.numpy()
        assert len(inputs) > 0 and np.all(inputs >= lower - 1e-12) and np.all(inputs <= upper + 1e-12), term
    time = problem.input_names.index("t") if "t" in problem.input_names else None
    space = [i for i in range(problem.input_dim) if i != time]
    if "initial" in batches:
        initial = batches["initial"].inputs.numpy()
        assert np.all(initial[:, time] == lower[time])
        np.testing.assert_allclose(batches["initial"].targets.numpy(), independent_targets(name, initial, "initial"),
                                   rtol=1e-12, atol=1e-14)
    if "boundary" not in batches:  # Allen-Cahn: periodic by the network's encoding
        assert name == "allen_cahn"
        batches = make_problem(name, "problem.periodic_loss=true").sample(generator(2))
    boundary = batches["boundary"].inputs.numpy()
    on_face = [(boundary[:, i] == lower[i]) | (boundary[:, i] == upper[i]) for i in space]
    assert np.all(np.any(on_face, axis=0)), "a boundary point off the boundary"
    for i in space:  # every face gets points
        assert np.any(boundary[:, i] == lower[i]) and np.any(boundary[:, i] == upper[i]), problem.input_names[i]
    if batches["boundary"].targets is not None:
        np.testing.assert_allclose(batches["boundary"].targets.numpy(),
                                   independent_targets(name, boundary, "boundary"), rtol=1e-12, atol=1e-14)


def test_schrodinger_boundary_pairs_the_two_ends_at_equal_times():
    problem = make_problem("schrodinger")
    inputs = problem.sample(generator(), ("boundary",))["boundary"].inputs
    left, right = inputs.chunk(2)
    assert len(left) == problem.size.points["boundary"] // 2
    assert torch.all(left[:, 0] == -5.0) and torch.all(right[:, 0] == 5.0)
    assert torch.equal(left[:, 1], right[:, 1])


def test_schrodinger_boundary_term_enforces_periodic_h_and_h_x():
    problem = make_problem("schrodinger", "problem.periodic=value_and_derivative")
    batch = problem.sample(generator(), ("boundary",))["boundary"]
    k = 2 * math.pi / 10  # one period over [−5, 5]

    def field(u_of_x):
        return lambda inputs: torch.cat([u_of_x(inputs[:, :1]) * torch.cos(inputs[:, 1:]),
                                         u_of_x(inputs[:, :1]) * torch.sin(inputs[:, 1:])], dim=1)

    periodic = problem.term_residual(field(lambda x: torch.cos(k * x) + 0.5 * torch.sin(3 * k * x)), batch, "boundary")
    assert periodic.shape[1] == 4 and periodic.abs().max() < 1e-12
    kinked = problem.term_residual(field(lambda x: x.square()), batch, "boundary")  # h periodic, h_x not
    assert kinked[:, :2].abs().max() < 1e-12 and kinked[:, 2:].abs().amax(dim=0).min() > 1.0
    assert problem.term_loss(field(lambda x: x.square()), batch, "boundary") > 1.0
    shifted = problem.term_residual(field(lambda x: x), batch, "boundary")  # h not periodic, h_x is
    assert shifted[:, :2].abs().amax(dim=0).min() > 1.0 and shifted[:, 2:].abs().max() < 1e-12


def test_schrodinger_boundary_term_of_the_paper_makes_only_h_periodic():
    problem = make_problem("schrodinger")
    assert problem.options.periodic == "value"
    batch = problem.sample(generator(), ("boundary",))["boundary"]

    def field(u_of_x):
        return lambda inputs: torch.cat([u_of_x(inputs[:, :1]), u_of_x(inputs[:, :1]) * inputs[:, 1:]], dim=1)

    kinked = problem.term_residual(field(lambda x: x.square()), batch, "boundary")  # h periodic, h_x not
    assert kinked.shape[1] == 2 and kinked.abs().max() < 1e-12
    shifted = problem.term_residual(field(lambda x: x), batch, "boundary")  # h not periodic
    assert shifted.abs().amax(dim=0).min() > 1.0


def test_beltrami_boundary_points_lie_on_the_edges_or_faces():
    for where, fixed_coordinates in (("edges", 2), ("faces", 1)):
        problem = make_problem("beltrami", f"problem.boundary_points={where}")
        inputs = problem.sample(generator(), ("boundary",))["boundary"].inputs
        on_side = (inputs[:, :3].abs() == 1.0).sum(dim=1)
        assert torch.all(on_side == fixed_coordinates), where
        assert torch.all((inputs[:, 3] >= 0) & (inputs[:, 3] <= 1))
    free = (inputs[:, :3].abs() < 1.0)  # faces: every axis is free somewhere
    assert free.any(dim=0).all()


def test_beltrami_edges_get_the_papers_shares():
    problem = make_problem("beltrami")
    inputs = problem.sample(generator(), ("boundary",))["boundary"].inputs
    free_axis = (inputs[:, :3].abs() < 1.0).int().argmax(dim=1)
    n = len(inputs)
    assert torch.bincount(free_axis, minlength=3).tolist() == [n // 3, n // 3, n - 2 * (n // 3)]
    edges = {tuple(torch.sign(inputs[i, :3]).where(inputs[i, :3].abs() == 1, 0).tolist()) for i in range(n)}
    assert len(edges) == 12


# ----- derivatives ------------------------------------------------------------------------------
@pytest.mark.parametrize("fast", [True, False], ids=["taylor", "autograd"])
@pytest.mark.parametrize("name", PROBLEMS)
def test_derivatives_match_finite_differences_of_a_random_network(name, fast):
    problem = make_problem(name)
    net = random_network(problem)
    points = problem.sample(generator(3), ("residual",))["residual"].inputs[:64]
    every = tuple(range(problem.input_dim))
    j = jet(net, points, first=every, second=every, fast=fast)
    with torch.no_grad():
        torch.testing.assert_close(j.value, net(points), rtol=0, atol=1e-13)
        for i in every:
            step = torch.zeros(problem.input_dim, dtype=torch.float64)
            step[i] = 1e-6
            first = (net(points + step) - net(points - step)) / 2e-6
            step[i] = 1e-4
            second = (net(points + step) - 2 * net(points) + net(points - step)) / 1e-8
            torch.testing.assert_close(j.d(i), first, rtol=0, atol=1e-8, msg=f"∂/∂{problem.input_names[i]}")
            torch.testing.assert_close(j.dd(i), second, rtol=0, atol=1e-6, msg=f"∂²/∂{problem.input_names[i]}²")


@pytest.mark.parametrize("name", PROBLEMS)
def test_every_term_is_the_same_by_taylor_and_by_autograd(name):
    problem = make_problem(name)
    net = random_network(problem, seed=1)
    batches = {term: problem.sample_term(term, 100, generator(4)) for term in problem.terms}
    for term in problem.terms:
        problem.fast = True
        taylor = problem.term_residual(net, batches[term], term)
        problem.fast = False
        nested = problem.term_residual(net, batches[term], term)
        assert taylor.abs().max() > 1e-3, term  # a random network is no solution
        torch.testing.assert_close(taylor, nested, rtol=1e-9, atol=1e-11, msg=term)


# ----- groupings and sizes ----------------------------------------------------------------------
@pytest.mark.parametrize("name", PROBLEMS)
def test_groupings_cover_every_term_once_and_sum_to_the_same_total(name):
    """With ``per_column`` every grouping sums to the same total; with the paper's reduction a group
    is one mean over its terms' concatenated entries, or the sum of its terms' losses."""
    problem = make_problem(name, "problem.reduction=per_column")
    net = random_network(problem, seed=2)
    batches = {term: problem.sample_term(term, 100 + 20 * k, generator(5)) for k, term in enumerate(problem.terms)}
    total = sum(problem.term_loss(net, batches[t], t) for t in problem.terms)
    assert total > 0
    paper = make_problem(name)
    for n_losses, groups in problem.groupings.items():
        assert len(groups) == n_losses and groups[0] == ("residual",)
        assert sorted(t for g in groups for t in g) == sorted(problem.terms)
        torch.testing.assert_close(problem.group_losses(net, batches, problem.groups(n_losses)).sum(), total)
        for group, value in zip(groups, paper.group_losses(net, batches, groups)):
            squares = [paper.term_residual(net, batches[t], t).square() for t in group]
            if len(group) == 1 or paper.group_reduction == "sum":
                expected = sum(paper.term_loss(net, batches[t], t) for t in group)
            else:
                expected = torch.cat([s.reshape(-1) for s in squares]).mean()
            torch.testing.assert_close(value, expected, rtol=1e-12, atol=0)


def test_kovasznay_offers_two_losses_only():
    assert tuple(make_problem("kovasznay").groupings) == (2,)
    with pytest.raises(ConfigError, match=r"n_losses=3 .* allowed: 2\.$"):
        prepare(compose_config("problem=kovasznay", "n_losses=3"))
    assert len(prepare(compose_config("problem=kovasznay", "n_losses=2")).groups) == 2
    for name in ("schrodinger", "beltrami"):
        assert sorted(make_problem(name).groupings) == [2, 3]


PAPER = {  # BRIEF §5: points per iteration and iterations of the paper
    "burgers": ({"residual": 10000, "boundary": 250, "initial": 250}, 30000),
    "schrodinger": ({"residual": 20000, "boundary": 500, "initial": 500}, 100000),
    "kovasznay": ({"residual": 20000, "boundary": 1000}, 100000),
    "beltrami": ({"residual": 25000, "boundary": 5000, "initial": 5000}, 100000),
    # the LRA paper's (arXiv 2001.04536): 128 fresh points per term and per edge, 40 001 iterations
    "helmholtz": ({"residual": 128, "boundary": 4 * 128}, 40001),
    "klein_gordon": ({"residual": 128, "initial": 128, "boundary": 2 * 128}, 40001),
    # the NTK paper's (arXiv 2007.14527, wave notebook): 300 residual points, 100 per initial and edge term
    "wave": ({"residual": 300, "initial": 100, "boundary": 2 * 100, "velocity": 100}, 80001),
    # the causal paper's iterations (arXiv 2203.07404) with jaxpi's batch
    "allen_cahn": ({"residual": 4096, "initial": 512, "boundary": 256}, 300000),
}
PAPER_NETWORK = {"helmholtz": (50, 3), "wave": (500, 3), "allen_cahn": (128, 4)}
"""(width, hidden layers) of the paper's size where it is not the ConFIG paper's 5 x 50."""
MORE_SIZES = {"helmholtz": {"dcgd"}, "klein_gordon": {"dcgd"}}
"""Sizes besides cpu and paper: the DCGD paper's (Hwang & Lim 2024): 3 x 50, 1 280 residual points, 50 000 iterations."""
OUTPUTS = {"burgers": ("u",), "schrodinger": ("u", "v"), "kovasznay": ("u", "v", "p"),
           "beltrami": ("u", "v", "w", "p"), "helmholtz": ("u",), "klein_gordon": ("u",), "wave": ("u",),
           "allen_cahn": ("u",)}


@pytest.mark.parametrize("name", PROBLEMS)
def test_sizes_cpu_default_and_the_papers(name):
    problem = make_problem(name)
    assert problem.options.size == "cpu" and set(problem.options.sizes) == {"cpu", "paper"} | MORE_SIZES.get(name, set())
    paper = make_problem(name, "problem.size=paper").size
    assert (paper.width, paper.hidden_layers) == PAPER_NETWORK.get(name, (50, 5))
    for other in MORE_SIZES.get(name, ()):
        size = make_problem(name, f"problem.size={other}").size
        assert (size.width, size.hidden_layers, size.points["residual"], size.iterations) == (50, 3, 1280, 50000)
        assert all(size.points[t] == paper.points[t] for t in problem.terms if t != "residual")
    assert (dict(paper.points), paper.iterations) == PAPER[name]
    assert problem.field_names == OUTPUTS[name]
    cpu = problem.size
    assert set(problem.terms) <= set(cpu.points) and cpu.iterations < paper.iterations  # and optional terms
    assert all(cpu.points[t] <= paper.points[t] for t in problem.terms)
