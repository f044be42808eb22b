"""Figures from synthetic runs: every kind is drawn into non-empty PNG and PDF files, every method
in one colour throughout."""

import math

import pytest
from matplotlib.colors import to_hex

from pinnbench.report import build_report, collect_runs, figures, overview
from pinnbench.report.style import BASELINE_COLOR, method_colors
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


@pytest.mark.parametrize("name", ["improvement", "performance_profile", "time_to_target",
                                  "test_mse_burgers-cpu_n3_it200", "losses_burgers-cpu_n3_it200",
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
    assert figures.draw_all(runs, tmp_path, notes) == []
    assert any("Field figures skipped" in n for n in notes)


def test_without_any_comparison_there_is_no_improvement_figure(tmp_path):
    write_study(tmp_path / "runs")
    report = build_report([tmp_path / "runs" / "burgers-cpu" / "config-n3-it200-seed0"], tmp_path / "out",
                          n_resamples=10)
    assert any("no improvement figure" in n for n in report.notes)


def test_method_colours_are_stable_and_adam_is_always_black():
    colors = method_colors(["pcgrad", "adam", "config", "mconfig"])
    assert colors == method_colors(["mconfig", "config", "adam", "pcgrad", "config"])
    assert colors["adam"] == BASELINE_COLOR == method_colors(["adam"])["adam"]
    many = method_colors([f"m{i:02d}" for i in range(17)] + ["adam"])
    assert len(set(many.values())) == 18


def test_factor_ticks_read_as_factors_and_paper_percent():
    ticks, labels = overview.factor_ticks(math.log10(3))
    assert ticks == pytest.approx([-math.log10(3), -math.log10(2), -math.log10(1.5), 0, math.log10(1.5),
                                   math.log10(2), math.log10(3)])
    assert labels[3] == "×1 (0 %)" and labels[5] == "×2 (+50 %)" and labels[1] == "×1/2 (-100 %)"
    ticks, labels = overview.factor_ticks(2.5)  # beyond 50×: powers of ten
    assert labels == ["×1/100 (-9900 %)", "×1/10 (-900 %)", "×1 (0 %)", "×10 (+90 %)", "×100 (+99 %)"]


def test_every_figure_colours_a_method_alike(tmp_path, monkeypatch):
    drawn = {}

    def keep(fig, out_dir, name):
        drawn[name] = fig
        return []

    for module in (figures, overview):
        monkeypatch.setattr(module, "save", keep)
    monkeypatch.setattr(figures, "field_plotter", lambda: None)
    build_report([write_study(tmp_path / "runs")], tmp_path / "out", n_resamples=10)
    colors = method_colors(["adam", "config", "mconfig"])
    seen = {}
    for name, fig in drawn.items():
        for ax in fig.axes:
            for line in ax.get_lines():
                method = line.get_label().split(" (")[0]
                if method in colors:
                    seen.setdefault(method, set()).add(to_hex(line.get_color()))
            for bars in ax.containers:
                if getattr(bars, "patches", None) and bars.get_label() in colors:
                    seen.setdefault(bars.get_label(), set()).add(to_hex(bars.patches[0].get_facecolor()))
    assert {"improvement", "performance_profile", "time_to_target", "test_mse_burgers-cpu_n3_it200"} <= set(drawn)
    assert seen == {m: {c} for m, c in colors.items()}
