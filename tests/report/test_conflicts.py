"""Conflict statistics and figure from the diagnostics columns of history.csv."""

import math

import pandas as pd
import pytest

from pinnbench.report import build_report
from pinnbench.report.conflicts import conflict_fraction
from tests.report.conftest import write_run


def add_diagnostics(run_dir, update_cosines):
    """Diagnostics rows: cos_update_* per iteration from ``update_cosines`` [(residual, boundary, initial)]."""
    history = pd.read_csv(run_dir / "history.csv")
    for k, cosines in enumerate(update_cosines):
        index = history.index[history.iteration == 10 * (k + 1)][0]
        history.loc[index, ["cos_residual_boundary", "cos_residual_initial", "cos_boundary_initial"]] = [-0.5, 0.2, -0.9]
        history.loc[index, ["cos_update_residual", "cos_update_boundary", "cos_update_initial"]] = cosines
        history.loc[index, ["gnorm_residual", "gnorm_boundary", "gnorm_initial"]] = [1.0, 2.0, 3.0]
    history.to_csv(run_dir / "history.csv", index=False)


def test_conflict_fraction_counts_iterations_with_a_negative_update_cosine():
    history = pd.DataFrame({"iteration": [0, 10, 20, 30, 40],
                            "cos_update_a": [None, 0.3, -0.1, 0.2, 0.5],
                            "cos_update_b": [None, 0.3, 0.4, -0.2, 0.5]})
    assert conflict_fraction(history) == (0.5, 4)
    fraction, n = conflict_fraction(pd.DataFrame({"iteration": [0, 10], "loss_a": [1.0, 0.5]}))
    assert math.isnan(fraction) and n == 0


def test_report_tabulates_and_draws_conflict_per_method(tmp_path):
    runs = tmp_path / "runs"
    for seed in range(2):
        add_diagnostics(write_run(runs, method="config", seed=seed), [(0.1, 0.1, 0.1)] * 4)
        adam = [(0.5, -0.2, 0.3), (0.4, 0.1, 0.2), (-0.1, 0.3, 0.3), (0.2, 0.2, 0.2)] if seed == 0 else \
            [(-0.5, 0.2, 0.3)] * 4
        add_diagnostics(write_run(runs, method="adam", seed=seed), adam)
    report = build_report([runs], tmp_path / "out")
    table = report.conflicts.set_index("method")
    assert table.loc["config", "conflict_fraction_mean"] == 0.0
    assert table.loc["adam", "conflict_fraction_mean"] == pytest.approx((0.5 + 1.0) / 2)
    assert table.loc["adam", "conflict_fraction_min"] == 0.5 and table.loc["adam", "n_seeds"] == 2
    assert (tmp_path / "out" / "conflicts.csv").exists()
    assert "## Gradient conflict" in (tmp_path / "out" / "summary.md").read_text()
    figures = list((tmp_path / "out" / "figures").glob("conflict_*.png"))
    assert len(figures) == 1 and figures[0].stat().st_size > 10_000
