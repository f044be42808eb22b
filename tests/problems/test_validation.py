"""The validation set (selection for tuning) and the label-free objective, for every problem."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.interpolate import RegularGridInterpolator
from scipy.spatial import cKDTree

from tests.problems.conftest import CLOSED_FORM, PROBLEMS, make_problem


def _grid_interpolation(problem, inputs: np.ndarray) -> np.ndarray:
    """The test grid's reference linearly interpolated at ``inputs`` (an independent path to the values)."""
    grid, fields = problem.reference()
    axes = [np.unique(grid[:, j]) for j in range(grid.shape[1])]
    values = fields[np.lexsort(grid.T[::-1])].reshape(*(len(a) for a in axes), fields.shape[1])
    return RegularGridInterpolator(axes, values)(inputs)


@pytest.mark.parametrize("name", PROBLEMS)
def test_validation_points_are_off_the_test_grid_and_hold_the_reference(name):
    problem = make_problem(name)
    inputs, fields = problem.validation_set()
    grid, _ = problem.reference()
    assert inputs.shape == (problem.validation_points, problem.input_dim) and fields.shape[1] == problem.output_dim
    assert cKDTree(grid).query(inputs)[0].min() > 1e-9  # disjoint from the test grid
    assert (inputs >= np.array(problem.lower)).all() and (inputs <= np.array(problem.upper)).all()
    again_inputs, again_fields = make_problem(name).validation_set()  # fixed seed (and cached)
    assert np.array_equal(again_inputs, inputs) and np.array_equal(again_fields, fields)
    if name in CLOSED_FORM:
        with torch.no_grad():
            exact = problem.exact(torch.from_numpy(inputs)).numpy()
        assert np.allclose(fields, exact, rtol=0, atol=1e-12)
    else:  # a cubic interpolation of the reference grid: linear interpolation agrees to its own accuracy
        inside = ((inputs >= grid.min(axis=0)) & (inputs <= grid.max(axis=0))).all(axis=1)
        interpolated = _grid_interpolation(problem, inputs[inside])
        assert np.linalg.norm(interpolated - fields[inside]) / np.linalg.norm(fields[inside]) < 2e-2


@pytest.mark.parametrize("name", CLOSED_FORM)
def test_the_exact_solution_scores_zero_on_validation_and_label_free(name):
    problem = make_problem(name)
    errors = problem.validation_errors(problem.exact)
    assert errors["val_rel_l2"] < 1e-12 and errors["val_mse"] < 1e-20
    groups = problem.groups(max(problem.groupings))
    assert problem.label_free(problem.exact, groups) < 1e-10  # every residual and data term vanishes


@pytest.mark.parametrize("name", PROBLEMS)
def test_label_free_is_the_unweighted_sum_of_the_training_losses_on_points_of_a_fixed_seed(name):
    problem = make_problem(name)
    model = torch.nn.Sequential(torch.nn.Linear(problem.input_dim, 8), torch.nn.Tanh(),
                                torch.nn.Linear(8, problem.output_dim)).double()
    groups = problem.groups(min(problem.groupings))
    value = problem.label_free(model, groups)
    batches = problem.sample(torch.Generator().manual_seed(problem.LABEL_FREE_SEED))
    expected = sum(problem.group_loss(model, batches, g).item() for g in groups)
    assert value == pytest.approx(expected, rel=1e-12) and value > 0
    assert problem.label_free(model, groups) == value
