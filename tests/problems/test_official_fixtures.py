"""Our problems against the paper's own code: fed the network weights and the training points in
``tests/fixtures/official/<problem>.npz`` (drawn and evaluated by the paper's code, see the
README beside them), every loss term, both groupings and the test error must come out as the
paper's code computed them (float64, relative 1e-10)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pinnbench.network import MLP
from problems.base import Batch
from tests.problems.conftest import make_problem

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "official"
RTOL = 1e-10

TERMS = {  # our term → the fixture's array of the paper's term loss
    "burgers": {"residual": "term_residual", "boundary": "term_boundary", "initial": "term_initial"},
    "schrodinger": {"residual": "term_residual", "boundary": "term_boundary_value", "initial": "term_initial"},
    "kovasznay": {"residual": "term_residual", "boundary": "term_boundary"},
    "beltrami": {"residual": "term_residual", "boundary": "term_boundary", "initial": "term_initial"},
}


OFFICIAL = tuple(TERMS)
"""The problems of the ConFIG paper, whose code the fixtures come from."""


def fixture(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / f"{name}.npz") as data:
        return dict(data)


def official_network(problem, data) -> MLP:
    """Our MLP carrying the recorded weights (6 linear layers, forward order)."""
    model = MLP(problem.input_dim, problem.output_dim, problem.size.width, problem.size.hidden_layers).double()
    assert len(model.linears) == 6
    with torch.no_grad():
        for k, layer in enumerate(model.linears):
            layer.weight.copy_(torch.from_numpy(data[f"weight_{k}"]))
            layer.bias.copy_(torch.from_numpy(data[f"bias_{k}"]))
    return model


def batches(problem, data) -> dict[str, Batch]:
    """The recorded points of every term, with targets from *our* target formulas."""
    out = {}
    for term in problem.terms:
        inputs = torch.from_numpy(data[f"points_{term}"])
        out[term] = Batch(inputs, problem.target(term, inputs))
    return out


@pytest.fixture(params=[True, False], ids=["taylor", "autograd"])
def fast(request):
    return request.param


def official_setup(name: str, *overrides: str, fast: bool = True):
    """(fixture data, our problem, the recorded network, the recorded points with our targets)."""
    data = fixture(name)
    problem = make_problem(name, *overrides)
    problem.fast = fast
    return data, problem, official_network(problem, data), batches(problem, data)


@pytest.mark.parametrize("name", OFFICIAL)
def test_columns_and_network_outputs_are_the_papers(name):
    data = fixture(name)
    problem = make_problem(name)
    assert tuple(data["input_names"]) == problem.input_names and tuple(data["output_names"]) == problem.field_names
    model = official_network(problem, data)
    for term in ("residual", "boundary", "initial"):
        if f"outputs_{term}" in data:
            with torch.no_grad():
                ours = model(torch.from_numpy(data[f"points_{term}"])).numpy()
            np.testing.assert_allclose(ours, data[f"outputs_{term}"], rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("name", OFFICIAL)
def test_targets_are_the_papers(name):
    data = fixture(name)
    problem = make_problem(name)
    for term, batch in batches(problem, data).items():
        if f"targets_{term}" in data:
            # the paper's targets are its formulas in float64; ours agree to float64 round-off
            np.testing.assert_allclose(batch.targets.numpy(), data[f"targets_{term}"], rtol=0, atol=1e-13)


@pytest.mark.parametrize("name", OFFICIAL)
def test_every_term_loss_is_the_papers(name, fast):
    data, problem, model, points = official_setup(name, fast=fast)
    for term, key in TERMS[name].items():
        ours = problem.term_loss(model, points[term], term).item()
        assert ours == pytest.approx(float(data[key]), rel=RTOL), (term, ours, float(data[key]))


@pytest.mark.parametrize("name", OFFICIAL)
def test_both_groupings_are_the_papers(name, fast):
    data, problem, model, points = official_setup(name, fast=fast)
    for n_losses in sorted(problem.groupings):
        ours = problem.group_losses(model, points, problem.groups(n_losses)).detach().numpy()
        np.testing.assert_allclose(ours, data[f"loss_n{n_losses}"], rtol=RTOL, atol=0)
    assert {f"loss_n{n}" for n in problem.groupings} == {k for k in data if k.startswith("loss_n")}


@pytest.mark.parametrize("name", OFFICIAL)
def test_test_error_is_the_papers(name):
    data = fixture(name)
    problem = make_problem(name)
    assert problem.scored_reference == ("paper" if problem.paper_file else "exact")
    errors = problem.error(official_network(problem, data))
    assert errors["test_mse"] == pytest.approx(float(data["test_mse"]), rel=RTOL)
    if name == "schrodinger":  # [MSE(u), MSE(v), MSE(|h|)]
        ours = [errors["mse_u"], errors["mse_v"], errors["mse_h"]]
        np.testing.assert_allclose(ours, data["test_mse_fields"], rtol=RTOL)
    if "test_mse_columns" in data:
        np.testing.assert_allclose([errors[f"mse_{f}"] for f in problem.field_names], data["test_mse_columns"],
                                   rtol=RTOL)
    # the paper's own float32 evaluation agrees to float32 round-off
    assert errors["test_mse"] == pytest.approx(float(data["test_mse_float32"]), rel=1e-6)


def test_schrodinger_h_x_periodicity_is_the_papers_logged_term():
    """``periodic: value_and_derivative`` adds the h_x term the paper's code logs but does not train on."""
    data, problem, model, points = official_setup("schrodinger", "problem.periodic=value_and_derivative")
    ours = problem.term_loss(model, points["boundary"], "boundary").item()
    expected = float(data["term_boundary_value"]) + float(data["term_boundary_derivative"])
    assert ours == pytest.approx(expected, rel=RTOL)


PER_COLUMN_FACTORS = {  # ours (per_column) ÷ the paper's, for each loss of each grouping
    "burgers": {2: [1, 2], 3: [1, 1, 1]},
    "schrodinger": {2: None, 3: [1, 1, 2]},
    "kovasznay": {2: [1, 3]},
    "beltrami": {2: [1, 8], 3: [1, 4, 4]},
}


@pytest.mark.parametrize("name", OFFICIAL)
def test_per_column_reduction_scales_the_papers_losses_as_documented(name):
    data, problem, model, points = official_setup(name, "problem.reduction=per_column")
    for n_losses, factors in PER_COLUMN_FACTORS[name].items():
        ours = problem.group_losses(model, points, problem.groups(n_losses)).detach().numpy()
        if factors is None:  # Schrödinger: boundary (×1) + initial (×2) in one loss
            factors = [1, (float(data["term_boundary_value"]) + 2 * float(data["term_initial"]))
                       / float(data["loss_n2"][1])]
        np.testing.assert_allclose(ours, np.asarray(factors) * data[f"loss_n{n_losses}"], rtol=RTOL)
