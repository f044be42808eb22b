"""Each problem's reference on its test grid against an independent truth, and the test error."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
import torch

from problems.base import REFERENCE_DIR_ENV, paper_data
from tests.problems.conftest import PROBLEMS, beltrami_np, kovasznay_np, make_problem


def paper_file(filename: str):
    """The paper's data file, or a skip that says exactly what is missing and where it was looked for."""
    path = paper_data(filename)
    if path is None:
        pytest.skip(f"paper data file {filename} not found: set ${REFERENCE_DIR_ENV} or place it in "
                    f"<repository>/../shared/reference/ (this comparison did NOT run)")
    return path


def test_burgers_cole_hopf_is_about_1_6e_4_from_the_papers_simulation():
    """The paper's file is a numerical solution; the README documents its distance from exact."""
    paper = np.load(paper_file("burgers_simulation_data.npy")).astype(np.float64)
    inputs, fields = make_problem("burgers").reference()
    assert paper.shape == (100, 256)
    np.testing.assert_allclose(inputs[:256, 0], -1 + (np.arange(256) + 0.5) / 128)
    np.testing.assert_allclose(inputs[::256, 1], np.linspace(0, 1, 100))
    ours = fields[:, 0].reshape(100, 256)
    mse = np.mean((ours - paper) ** 2)
    assert 1.2e-4 < mse < 2.0e-4, mse
    np.testing.assert_allclose(ours[0], -np.sin(np.pi * inputs[:256, 0]), atol=1e-12)  # exact at t = 0
    assert 0.01 < np.abs(ours[0] - paper[0]).max() < 0.02 and 0.1 < np.abs(ours - paper).max() < 0.2


def test_schrodinger_split_step_matches_the_papers_nls_data():
    data = scipy.io.loadmat(paper_file("schrodinger_NLS.mat"))
    problem = make_problem("schrodinger", "problem.test_reference=exact")
    inputs, fields = problem.compute_reference()
    x, t, h = data["x"].ravel(), data["tt"].ravel(), data["uu"]  # h[x, t]
    np.testing.assert_allclose(inputs[: len(x), 0], x, rtol=0, atol=1e-14)
    np.testing.assert_allclose(inputs[:: len(x), 1], t, rtol=0, atol=1e-14)
    u, v = (fields[:, k].reshape(len(t), len(x)).T for k in (0, 1))
    mse_u, mse_v = np.mean((u - h.real) ** 2), np.mean((v - h.imag) ** 2)
    assert mse_u < 1e-6 and mse_v < 1e-6, (mse_u, mse_v)
    # the test error of a "network" that returns the file itself is the file's distance from ours
    truth = torch.from_numpy(np.stack([h.real.T.ravel(), h.imag.T.ravel()], axis=1))
    errors = problem.error(lambda points: truth)
    assert errors["test_mse"] == pytest.approx(mse_u + mse_v, rel=1e-6, abs=1e-30)
    assert errors["test_mse_exact"] == errors["test_mse"] and errors["test_mse_paper"] == 0.0
    assert set(errors) == {"test_mse", "mse_u", "mse_v", "mse_h", "rel_l2", "rel_l2_u", "rel_l2_v", "rel_l2_h",
                           "test_mse_exact", "rel_l2_exact", "test_mse_paper", "rel_l2_paper"}


def test_schrodinger_reference_conserves_mass_and_breathes_with_period_pi_over_2():
    """Independent of any file: ∫|h|² dx is invariant, and 2 sech x returns to itself at t = π/2."""
    inputs, fields = make_problem("schrodinger").compute_reference()
    h2 = (fields ** 2).sum(axis=1).reshape(201, 256)
    mass = h2.sum(axis=1) * 10 / 256
    np.testing.assert_allclose(mass, mass[0], rtol=1e-10)
    assert h2.max() > 15  # the breather focuses to |h| ≈ 4 at t = π/4
    modulus = np.sqrt(h2)
    assert np.abs(modulus[-1] - modulus[0]).max() < 0.05


def test_schrodinger_test_error_is_mse_u_plus_mse_v_and_reports_h():
    problem = make_problem("schrodinger")
    inputs, fields = problem.reference()
    shifted = torch.from_numpy(fields + np.array([0.1, -0.2]))
    errors = problem.error(lambda points: shifted)
    assert errors["mse_u"] == pytest.approx(0.01) and errors["mse_v"] == pytest.approx(0.04)
    assert errors["test_mse"] == pytest.approx(0.05)
    modulus = np.hypot(*fields.T)
    assert errors["mse_h"] == pytest.approx(np.mean((np.hypot(*(fields + [0.1, -0.2]).T) - modulus) ** 2))


def test_kovasznay_reference_is_the_closed_form_on_the_papers_grid():
    inputs, fields = make_problem("kovasznay").compute_reference()
    assert inputs.shape == (999, 2) and fields.shape == (999, 3) and fields.dtype == np.float64
    np.testing.assert_allclose(np.unique(inputs[:, 0]), np.linspace(-0.5, 1.0, 27))
    np.testing.assert_allclose(np.unique(inputs[:, 1]), np.linspace(-0.5, 1.5, 37))
    np.testing.assert_allclose(fields, kovasznay_np(*inputs.T), rtol=1e-13, atol=1e-14)


def test_beltrami_reference_is_the_closed_form_on_the_papers_grid():
    inputs, fields = make_problem("beltrami").compute_reference()
    assert inputs.shape == (1960, 4) and fields.shape == (1960, 4) and fields.dtype == np.float64
    for axis, count in zip(range(4), (7, 7, 8, 5)):
        lower = 0.0 if axis == 3 else -1.0
        np.testing.assert_allclose(np.unique(inputs[:, axis]), np.linspace(lower, 1.0, count))
    np.testing.assert_allclose(fields, beltrami_np(*inputs.T), rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("name", PROBLEMS)
def test_error_is_the_mean_over_fields_of_each_fields_mse(name):
    problem = make_problem(name, "problem.test_reference=exact")
    inputs, fields = problem.reference()
    offsets = 0.01 * np.arange(1, problem.output_dim + 1)
    errors = problem.error(lambda points: torch.from_numpy(fields + offsets))
    for k, (field, offset) in enumerate(zip(problem.field_names, offsets)):
        assert errors[f"mse_{field}"] == pytest.approx(offset**2)
        assert errors[f"rel_l2_{field}"] == pytest.approx(offset * np.sqrt(len(fields)) / np.linalg.norm(fields[:, k]))
    expected = offsets[:2].__pow__(2).sum() if name == "schrodinger" else np.mean(offsets**2)
    assert errors["test_mse"] == pytest.approx(expected) and errors["test_mse_exact"] == errors["test_mse"]
    stacked = np.linalg.norm(np.broadcast_to(offsets, fields.shape)) / np.linalg.norm(fields)
    assert errors["rel_l2"] == pytest.approx(stacked) and errors["rel_l2_exact"] == errors["rel_l2"]
    assert problem.error(lambda points: torch.from_numpy(fields))["test_mse"] == 0.0
    assert problem.scored_reference == "exact"


@pytest.mark.parametrize("name", ["burgers", "schrodinger"])
def test_the_papers_file_scores_test_mse_by_default_and_both_are_recorded(name):
    problem = make_problem(name)
    inputs, fields = problem.reference()
    errors = problem.error(lambda points: torch.from_numpy(fields))  # the exact reference as prediction
    assert problem.scored_reference == "paper"
    assert errors["test_mse_exact"] == 0.0 and errors["test_mse"] == errors["test_mse_paper"]
    if name == "burgers":  # the paper's simulation is 1.6e-4 from the exact solution
        assert 1.2e-4 < errors["test_mse_paper"] < 2.0e-4
    else:
        assert errors["test_mse_paper"] < 1e-12


def test_a_missing_paper_file_is_said_and_the_exact_reference_used(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr("problems.base.PAPER_DATA_DIRS", [tmp_path])
    monkeypatch.setenv(REFERENCE_DIR_ENV, str(tmp_path))
    problem = make_problem("burgers")
    assert problem.scored_reference == "exact"
    warning = capsys.readouterr().err
    assert "burgers_simulation_data.npy" in warning and "test_reference=exact" in warning
    inputs, fields = problem.reference()
    errors = problem.error(lambda points: torch.from_numpy(fields))
    assert errors["test_mse"] == 0.0 and "test_mse_paper" not in errors
