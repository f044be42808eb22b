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


def add_gradient_spectrum(run_dir, rows):
    """Diagnostics rows at iterations 10, 20, … with (alignment, grad_rank, grad_cond) from ``rows``."""
    history = pd.read_csv(run_dir / "history.csv")
    for k, values in enumerate(rows):
        index = history.index[history.iteration == 10 * (k + 1)][0]
        history.loc[index, ["alignment", "grad_rank", "grad_cond"]] = values
    history.to_csv(run_dir / "history.csv", index=False)


def test_report_tabulates_and_draws_alignment_rank_and_condition_number(tmp_path):
    runs = tmp_path / "runs"
    spectra = {0: [(-0.5, 3, 10.0), (0.1, 3, 1000.0), (0.3, 2, float("inf"))],  # means −1/30, 8/3; median 1000
               1: [(0.2, 3, 100.0), (0.4, 3, 100.0), (0.6, 3, 10.0)]}  # means 0.4, 3; median 100
    for seed, rows in spectra.items():
        run_dir = write_run(runs, method="dcgd", seed=seed)
        add_diagnostics(run_dir, [(0.1, 0.2, 0.3)] * 3)
        add_gradient_spectrum(run_dir, rows)
    report = build_report([runs], tmp_path / "out")
    row = report.conflicts.set_index("method").loc["dcgd"]
    assert row["alignment_mean"] == pytest.approx((-1 / 30 + 0.4) / 2)
    assert row["grad_rank_mean"] == pytest.approx((8 / 3 + 3) / 2)
    assert row["grad_cond_median"] == pytest.approx((1000 + 100) / 2)
    assert "alignment_mean" in (tmp_path / "out" / "summary.md").read_text()
    figures = list((tmp_path / "out" / "figures").glob("conflict_*.png"))
    assert len(figures) == 1 and figures[0].stat().st_size > 10_000


def test_runs_without_the_gradient_spectrum_leave_its_columns_empty(tmp_path):
    runs = tmp_path / "runs"
    add_diagnostics(write_run(runs, method="config"), [(0.1, 0.1, 0.1)] * 2)
    table = build_report([runs], tmp_path / "out", figures=False).conflicts
    assert math.isnan(table.loc[0, "alignment_mean"]) and math.isnan(table.loc[0, "grad_cond_median"])


def test_the_step_conflict_is_counted_like_the_update_conflict_where_runs_log_it(tmp_path):
    runs = tmp_path / "runs"
    for seed in range(2):
        add_diagnostics(write_run(runs, method="config", seed=seed), [(0.1, 0.1, 0.1)] * 4)
        run_dir = write_run(runs, method="adam", seed=seed)
        add_diagnostics(run_dir, [(0.2, 0.2, 0.2)] * 4)
        if seed == 0:  # only seed 0 of adam logs its steps: one of four conflicts
            history = pd.read_csv(run_dir / "history.csv")
            for k, cosines in enumerate([(0.1, 0.2, 0.3), (0.1, -0.2, 0.3), (0.4, 0.2, 0.1), (0.1, 0.1, 0.1)]):
                index = history.index[history.iteration == 10 * (k + 1)][0]
                history.loc[index, ["cos_step_residual", "cos_step_boundary", "cos_step_initial"]] = cosines
            history.to_csv(run_dir / "history.csv", index=False)
    report = build_report([runs], tmp_path / "out")
    table = report.conflicts.set_index("method")
    assert table.loc["adam", "conflict_fraction_mean"] == 0.0  # the step columns are not update columns
    assert table.loc["adam", "step_conflict_fraction_mean"] == 0.25
    assert table.loc["adam", "step_conflict_fraction_min"] == table.loc["adam", "step_conflict_fraction_max"] == 0.25
    assert math.isnan(table.loc["config", "step_conflict_fraction_mean"])
    assert "step the optimiser took" in (tmp_path / "out" / "summary.md").read_text()


def test_reports_of_runs_without_step_cosines_have_no_step_columns(tmp_path):
    runs = tmp_path / "runs"
    add_diagnostics(write_run(runs, method="adam", seed=0), [(0.2, -0.2, 0.2)] * 4)
    table = build_report([runs], tmp_path / "out", figures=False).conflicts
    assert not [c for c in table.columns if c.startswith("step_")]
