"""Conflict diagnostics: the measures themselves, their place in training, ConFIG's property."""

import pandas as pd
import pytest
import torch

from pinnbench import records
from pinnbench.diagnostics import (alignment_score, condition_number, conflict_measures, numerical_rank,
                                   step_cosines)
from pinnbench.train import prepare, train
from tests.conftest import TINY, compose_config


def test_measures_equal_direct_cosines_and_norms():
    torch.manual_seed(0)
    G = torch.randn(3, 40, dtype=torch.float64) * torch.tensor([[1.0], [1e-3], [1e2]], dtype=torch.float64)
    update = torch.randn(40, dtype=torch.float64)
    measures = conflict_measures(G, update, ["r", "b", "i"])
    cos = torch.nn.functional.cosine_similarity
    assert measures["cos_r_b"] == pytest.approx(cos(G[0], G[1], dim=0).item(), rel=1e-12)
    assert measures["cos_b_i"] == pytest.approx(cos(G[1], G[2], dim=0).item(), rel=1e-12)
    assert measures["gnorm_i"] == pytest.approx(G[2].norm().item(), rel=1e-12)
    assert measures["cos_update_b"] == pytest.approx(cos(update, G[1], dim=0).item(), rel=1e-12)
    assert set(measures) == {"cos_r_b", "cos_r_i", "cos_b_i", "gnorm_r", "gnorm_b", "gnorm_i",
                             "cos_update_r", "cos_update_b", "cos_update_i", "alignment", "grad_rank", "grad_cond"}
    assert measures["alignment"] == alignment_score(G) and measures["grad_rank"] == 3
    singular = torch.linalg.svdvals(G)
    assert measures["grad_cond"] == pytest.approx((singular[0] / singular[-1]).item(), rel=1e-10)


def test_step_cosines_are_the_cosines_of_the_step_with_each_gradient():
    G = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, -2.0]], dtype=torch.float64)
    step = torch.tensor([2.0, 0.0, 2.0], dtype=torch.float64)  # θ_t − θ_{t+1}
    cosines = step_cosines(G, step, ["r", "b", "i"])
    assert set(cosines) == {"cos_step_r", "cos_step_b", "cos_step_i"}
    assert cosines["cos_step_r"].item() == pytest.approx(2 ** -0.5, rel=1e-12)
    assert cosines["cos_step_b"].item() == pytest.approx(0.5, rel=1e-12)
    assert cosines["cos_step_i"].item() == pytest.approx(-(2 ** -0.5), rel=1e-12)  # this step raises loss i


def t(*rows):
    return torch.tensor(rows, dtype=torch.float64)


# G, alignment score, numerical rank, condition number — by hand
GRADIENT_MATRICES = {
    # two equal directions: mean unit vector e_1, A = 2·1 − 1 = 1; rank 1, σ = (√(4 + 1), 0)
    "parallel": (t([2, 0], [1, 0]), 1.0, 1, float("inf")),
    # opposite: mean unit vector 0, A = −1 (= cos for two gradients)
    "opposite": (t([3, 0], [-1, 0]), -1.0, 1, float("inf")),
    # orthogonal, lengths 3 and 1: mean unit (½, ½), A = 2·½ − 1 = 0; σ = (3, 1), cond 3
    "orthogonal": (t([3, 0, 0], [0, 1, 0]), 0.0, 2, 3.0),
    # at 60°: cos = ½ = A; G Gᵀ = [[1, ½], [½, 1]], σ² = 3/2, 1/2, cond √3
    "sixty-degrees": (t([1, 0], [0.5, 3**0.5 / 2]), 0.5, 2, 3**0.5),
    # three unit vectors e_1, e_2, −e_1 in R³: mean (0, 1/3, 0), A = 2/9 − 1 = −7/9;
    # G Gᵀ = [[1,0,−1],[0,1,0],[−1,0,1]] has eigenvalues 2, 1, 0: rank 2, σ_min = 0
    "three": (t([1, 0, 0], [0, 1, 0], [-1, 0, 0]), -7 / 9, 2, float("inf")),
    # the same in R²: only min(k, d) = 2 singular values, √2 and 1 (GᵀG = diag(2, 1))
    "three-in-the-plane": (t([1, 0], [0, 1], [-1, 0]), -7 / 9, 2, 2**0.5),
    # three orthogonal gradients of lengths 1, 10, 100: A = 2·3/9 − 1 = −1/3, cond 100
    "three-orthogonal": (t([1, 0, 0, 0], [0, 10, 0, 0], [0, 0, 100, 0]), -1 / 3, 3, 100.0),
}


@pytest.mark.parametrize("G, alignment, rank, cond", GRADIENT_MATRICES.values(), ids=GRADIENT_MATRICES.keys())
def test_alignment_rank_and_condition_number_equal_hand_computed_values(G, alignment, rank, cond):
    for matrix in (G, G.float()):
        tolerance = 1e-12 if matrix.dtype == torch.float64 else 1e-6
        assert alignment_score(matrix).item() == pytest.approx(alignment, abs=tolerance)
        assert numerical_rank(matrix).item() == rank
        assert condition_number(matrix).item() == pytest.approx(cond, rel=1e-6)


def test_alignment_of_two_gradients_is_their_cosine():
    G = torch.randn(2, 30, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    cosine = torch.nn.functional.cosine_similarity(G[0], G[1], dim=0)
    assert alignment_score(G).item() == pytest.approx(cosine.item(), rel=1e-12)


def test_numerical_rank_tolerance_is_sigma_max_times_size_times_epsilon():
    """A row of relative size just above / below max(k, d)·ε counts / does not count."""
    d = 1000
    tolerance = d * torch.finfo(torch.float32).eps  # about 1.2e-4
    for factor, rank in ((2.0, 2), (0.5, 1)):
        G = torch.zeros(2, d)
        G[0, 0], G[1, 1] = 1.0, factor * tolerance
        assert numerical_rank(G).item() == rank


def run(tmp_path, *overrides):
    summary = train(prepare(compose_config(*TINY, "budget.iterations=30", *overrides)), tmp_path)
    return summary, pd.read_csv(tmp_path / records.HISTORY)


def test_diagnostics_leave_the_trajectory_alone_and_report_their_overhead(tmp_path):
    plain, _ = run(tmp_path / "plain", "method=adam")
    diagnosed, history = run(tmp_path / "diag", "method=adam", "diagnostics.conflict_every=7")
    assert diagnosed["test_mse"] == pytest.approx(plain["test_mse"], rel=1e-6)
    assert "diagnostics_overhead_percent" in diagnosed and "diagnostics_overhead_percent" not in plain
    rows = history[history.cos_residual_boundary.notna()]
    assert list(rows.iteration) == [7, 14, 21, 28]
    assert rows.filter(like="cos_").abs().le(1 + 1e-6).all().all()
    assert rows.alignment.between(-1 - 1e-6, 1 + 1e-6).all() and set(rows.grad_rank) <= {1, 2, 3}
    assert (rows.grad_cond >= 1).all()


@pytest.mark.parametrize("n_losses", [2, 3])
def test_config_updates_never_conflict_with_any_loss(tmp_path, n_losses):
    """With linearly independent gradients ConFIG's update has a positive cosine with every one."""
    _, history = run(tmp_path, "method=config", f"n_losses={n_losses}", "diagnostics.conflict_every=1")
    update_cosines = history.filter(like="cos_update_").dropna()
    assert len(update_cosines) == 30
    assert (update_cosines > 0).all().all()
    spread = update_cosines.max(axis=1) - update_cosines.min(axis=1)
    assert (spread < 1e-3).all()  # and the same cosine with each


def test_the_step_of_plain_gradient_descent_has_the_update_cosines(tmp_path, monkeypatch):
    """With SGD the step is −lr times the method's direction, so cos(step, g_i) = cos(update, g_i); with
    Adam the step is scaled per coordinate and its cosines differ."""
    def sgd(self, lr, optimizer=None):
        return torch.optim.SGD(self.params, lr=lr)

    _, adam = run(tmp_path / "adam", "method=config", "diagnostics.conflict_every=5")
    monkeypatch.setattr("pinnbench.methods.base.Method.make_optimizer", sgd)
    _, plain = run(tmp_path / "sgd", "method=config", "diagnostics.conflict_every=5")
    for history in (adam, plain):
        steps = history.filter(like="cos_step_").dropna()
        assert list(steps.columns) == ["cos_step_residual", "cos_step_boundary", "cos_step_initial"]
        assert len(steps) == 6 and steps.abs().le(1 + 1e-6).all().all()
    updates = plain.filter(like="cos_update_").dropna().to_numpy()
    assert plain.filter(like="cos_step_").dropna().to_numpy() == pytest.approx(updates, abs=1e-3)  # float32 θ
    assert abs(adam.filter(like="cos_step_").dropna().to_numpy()
               - adam.filter(like="cos_update_").dropna().to_numpy()).max() > 1e-2
