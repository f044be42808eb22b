"""Figures from synthetic runs: every kind is drawn into non-empty PNG and PDF files."""

import numpy as np
import pytest

from pinnbench.report import build_report, collect_runs, figures, summarize
from pinnbench.report.figures import seed_band
from tests.report.conftest import write_study

FIELD_CALLS = []


def fake_field_plotter(run_dir, out_path):
    FIELD_CALLS.append((run_dir.name, out_path.name))
    out_path.write_bytes(b"figure")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The report of the synthetic study, built once, with a stand-in field plotter."""
    root = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(figures, "field_plotter", lambda: fake_field_plotter)
        return build_report([write_study(root / "runs")], root / "out", n_resamples=200), root / "out"


@pytest.mark.parametrize("name", ["improvement", "test_mse_burgers-cpu_n3_it200", "losses_burgers-cpu_n3_it200",
                                  "test_mse_burgers-cpu_n3_wall2s", "losses_kovasznay-cpu_n2_it200"])
def test_figures_are_written_as_png_and_pdf(report, name):
    _, out = report
    for ext in ("png", "pdf"):
        path = out / "figures" / f"{name}.{ext}"
        assert path.is_file() and path.stat().st_size > 1000, path
    assert f"figures/{name}.png" in (out / "summary.md").read_text()


def test_fields_of_the_best_run_per_problem_use_the_field_plotter(report):
    result, out = report
    assert ("config-n3-it200-seed0", "fields_burgers.png") in FIELD_CALLS  # MSE 0.01, the lowest of Burgers
    assert ("config-n2-it200-seed0", "fields_kovasznay.pdf") in FIELD_CALLS
    assert out / "figures" / "fields_burgers.png" in result.files


def test_without_a_field_plotter_the_report_says_so(study, tmp_path, monkeypatch):
    monkeypatch.setattr(figures, "field_plotter", lambda: None)
    runs = collect_runs([study])
    runs["included"] = False  # nothing to draw: only the notes are checked
    notes = []
    assert figures.draw_all(runs, summarize(runs).table, tmp_path, notes) == []
    assert any("Field figures skipped" in n for n in notes)
    assert any("no improvement figure" in n for n in notes)


def test_seed_band_is_mean_and_range_up_to_the_shortest_curve():
    grid, mean, low, high = seed_band([(np.array([0.0, 2.0, 4.0]), np.array([1.0, 3.0, 5.0])),
                                       (np.array([0.0, 1.0, 3.0]), np.array([3.0, 3.0, 3.0]))])
    np.testing.assert_allclose(grid, [0, 1, 2, 3])
    np.testing.assert_allclose(mean, [2, 2.5, 3, 3.5])
    np.testing.assert_allclose(low, [1, 2, 3, 3])
    np.testing.assert_allclose(high, [3, 3, 3, 4])
