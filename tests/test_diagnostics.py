"""Conflict diagnostics: the measures themselves, their place in training, ConFIG's property."""

import pandas as pd
import pytest
import torch

from pinnbench import records
from pinnbench.diagnostics import conflict_measures
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
                             "cos_update_r", "cos_update_b", "cos_update_i"}


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


@pytest.mark.parametrize("n_losses", [2, 3])
def test_config_updates_never_conflict_with_any_loss(tmp_path, n_losses):
    """With linearly independent gradients ConFIG's update has a positive cosine with every one."""
    _, history = run(tmp_path, "method=config", f"n_losses={n_losses}", "diagnostics.conflict_every=1")
    update_cosines = history.filter(like="cos_update_").dropna()
    assert len(update_cosines) == 30
    assert (update_cosines > 0).all().all()
    spread = update_cosines.max(axis=1) - update_cosines.min(axis=1)
    assert (spread < 1e-3).all()  # and the same cosine with each
