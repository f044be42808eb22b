"""The loss weights table from the weight_<loss> columns of history.csv."""

import pandas as pd
import pytest

from pinnbench.report import build_report
from pinnbench.report.weights import final_weights, moves
from tests.report.conftest import write_run


def add_weights(run_dir, final: tuple[float, float, float]):
    """weight_* columns: 1 at first, ``final`` from half-way on (logged on every row but the first)."""
    history = pd.read_csv(run_dir / "history.csv")
    half = history["iteration"] >= history["iteration"].max() / 2
    for name, value in zip(("residual", "boundary", "initial"), final):
        history[f"weight_{name}"] = [None] + [value if late else 1.0 for late in half.iloc[1:]]
    history.to_csv(run_dir / "history.csv", index=False)


def test_final_weights_are_the_last_logged_ones_and_moves_tells_constant_weights_apart():
    history = pd.DataFrame({"iteration": [0, 10, 20], "weight_a": [None, 1.0, 2.5], "weight_b": [None, 0.5, None],
                            "loss_a": [1.0, 0.5, 0.2]})
    assert final_weights(history) == {"a": 2.5, "b": 0.5}
    assert final_weights(history[["iteration", "loss_a"]]) == {}
    assert moves([history]) and not moves([history.assign(weight_a=1.0, weight_b=1.0)])


def test_report_tabulates_the_final_weights_of_weighting_methods_only(tmp_path):
    runs = tmp_path / "runs"
    for seed, final in enumerate([(1.0, 4.0, 0.5), (1.0, 10.0, 0.7), (1.0, 6.0, 0.6)]):
        add_weights(write_run(runs, method="lra", seed=seed, test_mse=0.02), final)
        add_weights(write_run(runs, method="adam", seed=seed, test_mse=0.03), (1.0, 1.0, 1.0))  # stays 1: left out
        write_run(runs, method="config", seed=seed, test_mse=0.01)  # logs no weights
    report = build_report([runs], tmp_path / "out", figures=False, n_resamples=20)
    table = pd.read_csv(tmp_path / "out" / "weights.csv")
    assert set(table["method"]) == {"lra"} and list(table["loss"]) == ["residual", "boundary", "initial"]
    boundary = table.set_index("loss").loc["boundary"]
    assert (boundary["n_seeds"], boundary["final_median"], boundary["final_min"], boundary["final_max"]) == (
        3, 6.0, 4.0, 10.0)
    assert table.set_index("loss").loc["initial", "final_median"] == pytest.approx(0.6)
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "## Loss weights" in md and "| lra " in md
    assert tmp_path / "out" / "weights.csv" in report.files


def test_no_weights_table_without_weighting_methods(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, method="config")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "weights.csv").write_text("left by an earlier report\n")
    report = build_report([runs], tmp_path / "out", figures=False, n_resamples=20)
    assert report.weights is None and not (tmp_path / "out" / "weights.csv").exists()
    assert "## Loss weights" not in (tmp_path / "out" / "summary.md").read_text()
