"""The baselines' home problems (Helmholtz, Klein–Gordon, wave, Allen–Cahn): residuals on closed
forms, their references, and Allen–Cahn's spectral solution against the public data file's values."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from pinnbench.cli import main
from problems.allen_cahn import solve_allen_cahn
from problems.base import REFERENCE_DIR_ENV
from tests.problems.conftest import make_problem

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "allen_cahn_jaxpi_samples.json"


def points(problem, n: int = 300, seed: int = 0) -> torch.Tensor:
    return problem.sample_term("residual", n, torch.Generator().manual_seed(seed)).inputs


# ----- residuals on closed forms ------------------------------------------------------------------
def test_helmholtz_residual_of_a_perturbed_field_is_the_operator_applied_to_the_perturbation():
    """Δ + k² is linear: for u + δ sin(πx) sin(πy) the residual is δ (k² − 2π²) sin(πx) sin(πy)."""
    problem = make_problem("helmholtz")
    x = points(problem)
    delta = 0.03

    def field(inputs):
        return problem.exact(inputs) + delta * torch.sin(math.pi * inputs[:, :1]) * torch.sin(math.pi * inputs[:, 1:])

    expected = delta * (1 - 2 * math.pi**2) * torch.sin(math.pi * x[:, :1]) * torch.sin(math.pi * x[:, 1:])
    torch.testing.assert_close(problem.pde_residual(field, x), expected, rtol=1e-9, atol=1e-11)
    q = (1 - 17 * math.pi**2) * np.sin(np.pi * x[:, 0].numpy()) * np.sin(4 * np.pi * x[:, 1].numpy())
    np.testing.assert_allclose(problem.forcing(x)[:, 0].numpy(), q, rtol=1e-12, atol=1e-12)


def test_helmholtz_boundary_loss_is_the_sum_of_the_four_edges_means():
    problem = make_problem("helmholtz")
    batch = problem.sample_term("boundary", 4 * 10, torch.Generator().manual_seed(1))
    edges = [(1, -1.0), (0, 1.0), (1, 1.0), (0, -1.0)]
    for block, (axis, value) in zip(batch.inputs.split(10), edges):
        assert torch.all(block[:, axis] == value)

    def shifted(inputs):  # misfit 1 on the bottom edge (y = −1) only
        return problem.exact(inputs) + (inputs[:, 1:] == -1.0).double()

    assert problem.term_loss(shifted, batch, "boundary").item() == pytest.approx(1.0)
    per_column = make_problem("helmholtz", "problem.reduction=per_column")
    assert per_column.term_loss(shifted, batch, "boundary").item() == pytest.approx(0.25)


def test_klein_gordon_residual_of_a_shifted_solution_is_the_change_of_the_cubic_term():
    """u + δ (δ constant): u_tt − u_xx are unchanged, so the residual is (u + δ)³ − u³."""
    problem = make_problem("klein_gordon")
    x = points(problem)
    delta = 0.1
    u = problem.exact(x)
    torch.testing.assert_close(problem.pde_residual(lambda inputs: problem.exact(inputs) + delta, x),
                               (u + delta) ** 3 - u**3, rtol=1e-9, atol=1e-10)


def test_klein_gordon_initial_term_checks_value_and_velocity():
    problem = make_problem("klein_gordon")
    batch = problem.sample_term("initial", 50, torch.Generator().manual_seed(2))
    assert torch.all(batch.inputs[:, 1] == 0.0)
    residual = problem.term_residual(lambda inputs: inputs[:, :1] + 0.7 * inputs[:, 1:], batch, "initial")
    torch.testing.assert_close(residual, torch.tensor([[0.0, 0.7]], dtype=torch.float64).expand(50, 2))
    # the loss of the paper: the two columns' means summed
    assert problem.term_loss(lambda inputs: inputs[:, :1] + 0.7 * inputs[:, 1:], batch, "initial").item() == \
        pytest.approx(0.49)


def test_wave_standing_waves_solve_it_only_at_speed_two():
    problem = make_problem("wave")
    x = points(problem)

    def standing(speed):
        return lambda inputs: torch.sin(3 * math.pi * inputs[:, :1]) * torch.cos(3 * speed * math.pi * inputs[:, 1:])

    assert problem.pde_residual(standing(2.0), x).abs().max() < 1e-9
    u = standing(1.0)(x)  # u_tt − 4 u_xx = −9π² u + 36π² u
    torch.testing.assert_close(problem.pde_residual(standing(1.0), x), 27 * math.pi**2 * u, rtol=1e-9, atol=1e-9)
    velocity = problem.sample_term("velocity", 20, torch.Generator().manual_seed(3))
    assert problem.term_residual(problem.exact, velocity, "velocity").abs().max() < 1e-12
    moving = problem.term_residual(lambda inputs: problem.exact(inputs) + 0.5 * inputs[:, 1:], velocity, "velocity")
    torch.testing.assert_close(moving, torch.full((20, 1), 0.5, dtype=torch.float64))


def test_allen_cahn_uniform_states_follow_the_logistic_law():
    """u(t) = (1 + C e^{−10t})^{−1/2} solves u_t = 5u − 5u³ at every x; a wrong rate does not."""
    problem = make_problem("allen_cahn")
    x = points(problem)

    def uniform(rate):
        return lambda inputs: (1 + 3.0 * torch.exp(-rate * inputs[:, 1:])) ** -0.5 + 0 * inputs[:, :1]

    assert problem.pde_residual(uniform(10.0), x).abs().max() < 1e-12
    assert problem.pde_residual(uniform(8.0), x).abs().max() > 0.1


def test_allen_cahn_periodic_term_pairs_the_ends():
    problem = make_problem("allen_cahn", "problem.periodic_loss=true", "n_losses=3")
    batch = problem.sample_term("boundary", 40, torch.Generator().manual_seed(4))
    periodic = problem.term_residual(lambda i: torch.cos(math.pi * i[:, :1]) * i[:, 1:], batch, "boundary")
    assert periodic.shape == (20, 2) and periodic.abs().max() < 1e-12
    tilted = problem.term_residual(lambda i: i[:, :1] * i[:, 1:], batch, "boundary")  # u jumps, u_x does not
    torch.testing.assert_close(tilted[:, 0], -2 * batch.inputs[:20, 1])
    assert tilted[:, 1].abs().max() < 1e-12


# ----- references ---------------------------------------------------------------------------------
def test_allen_cahn_spectral_solution_matches_the_public_data_file():
    """48 values of jaxpi's allen_cahn.mat (Chebfun, another ETDRK4 code) against our solution."""
    samples = json.loads(FIXTURE.read_text())["samples"]
    assert len(samples) == 48 and "jaxpi" in json.loads(FIXTURE.read_text())["source"]
    inputs, fields = make_problem("allen_cahn").reference()
    grid = fields[:, 0].reshape(201, 512)
    for s in samples:
        np.testing.assert_allclose(inputs[s["t_index"] * 512 + s["x_index"]], [s["x"], s["t"]], rtol=0, atol=1e-15)
    ours = np.array([grid[s["t_index"], s["x_index"]] for s in samples])
    theirs = np.array([s["u"] for s in samples])
    assert np.abs(ours - theirs).max() < 1e-8  # measured: 6e-11 over the whole file
    assert np.abs(theirs).max() > 0.9  # the sharp layers have formed


def test_allen_cahn_solver_converges_in_the_time_step():
    times = np.linspace(0.0, 0.2, 41)
    coarse, fine = solve_allen_cahn(1e-4, 127, times, 4), solve_allen_cahn(1e-4, 127, times, 16)
    np.testing.assert_allclose(coarse[0], (np.linspace(-1, 1, 128)[:-1]) ** 2 * np.cos(np.pi * np.linspace(-1, 1, 128)[:-1]),
                               atol=1e-14)
    assert np.abs(coarse - fine).max() < 1e-8 and np.abs(fine[-1] - fine[0]).max() > 0.1


def test_allen_cahn_scores_against_the_data_file_when_it_is_there(tmp_path, monkeypatch):
    problem = make_problem("allen_cahn")
    inputs, fields = problem.reference()
    usol = fields[:, 0].reshape(201, 512) + 1e-3  # a stand-in file: our reference shifted
    scipy.io.savemat(tmp_path / "allen_cahn.mat", {"usol": usol, "x": inputs[:512, :1].T, "t": inputs[::512, 1:].T})
    monkeypatch.setenv(REFERENCE_DIR_ENV, str(tmp_path))
    scored = make_problem("allen_cahn")
    errors = scored.error(lambda points: torch.from_numpy(fields))
    assert scored.scored_reference == "paper"
    assert errors["test_mse_exact"] == 0.0 and errors["test_mse_paper"] == pytest.approx(1e-6, rel=1e-6)


@pytest.mark.parametrize("name, shape", [("helmholtz", (10000, 2)), ("klein_gordon", (10000, 2)),
                                         ("wave", (40000, 2)), ("allen_cahn", (201 * 512, 2))])
def test_reference_command_writes_each_home_problem(tmp_path, name, shape):
    out = tmp_path / f"{name}.npz"
    main(["reference", name, "--out", str(out)])
    with np.load(out) as data:
        assert data["inputs"].shape == shape and data["fields"].shape == (shape[0], 1)
        inputs, fields = data["inputs"], data["fields"][:, 0]
    assert inputs.min(axis=0).tolist() == list(make_problem(name).lower)
    assert inputs.max(axis=0).tolist() == list(make_problem(name).upper)
    x, y = inputs.T
    closed = {"helmholtz": lambda: np.sin(np.pi * x) * np.sin(4 * np.pi * y),
              "klein_gordon": lambda: x * np.cos(5 * np.pi * y) + (x * y) ** 3,
              "wave": lambda: np.sin(np.pi * x) * np.cos(2 * np.pi * y) + 0.5 * np.sin(4 * np.pi * x) * np.cos(8 * np.pi * y)}
    if name in closed:  # the papers' exact solutions, written out once more
        np.testing.assert_allclose(fields, closed[name](), rtol=0, atol=1e-13)
