"""Field figures: drawn at the end of a run (``plot: true``) and by ``pinnbench plot RUN_DIR``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from pinnbench.cli import main
from pinnbench.fieldplot import FIELDS_FILE, load_run
from pinnbench.train import prepare, train
from tests.conftest import compose_config, problem_node
from tests.problems.conftest import PROBLEMS

PNG = b"\x89PNG\r\n\x1a\n"


def tiny_run(name: str, run_dir, *overrides: str) -> dict:
    points = {"residual": 32, "boundary": 16, "initial": 16}
    terms = tuple(t for t in points if t in problem_node(name).sizes.cpu.points)
    cfg = compose_config(f"problem={name}", "method=adam", "n_losses=2", "budget.iterations=3", "quiet=true",
                         "eval_every=3", *(f"problem.sizes.cpu.points.{t}={points[t]}" for t in terms), *overrides)
    (run_dir / ".hydra").mkdir(parents=True)  # what Hydra writes for a real run
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    return train(prepare(cfg), run_dir)


@pytest.mark.parametrize("name", PROBLEMS)
def test_a_run_draws_its_fields_and_records_each_fields_error(tmp_path, name):
    summary = tiny_run(name, tmp_path, "plot=true")
    assert summary["status"] == "completed" and np.isfinite(summary["test_mse"])
    problem, model = load_run(tmp_path)
    for field in problem.field_names:
        assert summary[f"mse_{field}"] > 0
    if name == "schrodinger":
        assert summary["test_mse"] == pytest.approx(summary["mse_u"] + summary["mse_v"]) and summary["mse_h"] > 0
    else:
        assert summary["test_mse"] == pytest.approx(np.mean([summary[f"mse_{f}"] for f in problem.field_names]))
    assert (tmp_path / FIELDS_FILE).read_bytes().startswith(PNG)
    # the rebuilt network is the trained one: same test error
    assert problem.error(model)["test_mse"] == pytest.approx(summary["test_mse"], rel=1e-5)


def test_plot_command_redraws_a_run_and_rejects_a_non_run(tmp_path, capsys):
    tiny_run("kovasznay", tmp_path / "run", "plot=false")
    assert not (tmp_path / "run" / FIELDS_FILE).exists()
    main(["plot", str(tmp_path / "run")])
    assert (tmp_path / "run" / FIELDS_FILE).read_bytes().startswith(PNG)
    main(["plot", str(tmp_path / "run"), "--out", str(tmp_path / "k.pdf")])
    assert (tmp_path / "k.pdf").read_bytes().startswith(b"%PDF")
    for bad in (["plot", str(tmp_path)], ["plot", str(tmp_path / "run"), "--out", str(tmp_path / "no/k.png")]):
        with pytest.raises(SystemExit) as exit_info:
            main(bad)
        assert exit_info.value.code == 2 and capsys.readouterr().err.startswith("error:")


def test_every_problem_has_a_regular_plot_slice():
    from tests.problems.conftest import make_problem

    for name in PROBLEMS:
        problem = make_problem(name)
        where = problem.plot_slice()
        rows, cols = where.shape
        grid = where.inputs.reshape(rows, cols, problem.input_dim)
        horizontal, vertical = where.axes
        assert np.all(np.diff(grid[:, :, horizontal], axis=1) > 0) and np.all(np.diff(grid[:, :, vertical], axis=0) > 0)
        assert where.fields.shape == (rows * cols, problem.output_dim)
        if name == "beltrami":
            assert np.all(where.inputs[:, 2] == 0) and np.all(where.inputs[:, 3] == 1)
        if name in ("kovasznay", "beltrami"):  # slices off the test grid: the closed form there
            with torch.no_grad():
                np.testing.assert_allclose(where.fields, problem.exact(torch.from_numpy(where.inputs)).numpy(),
                                           atol=1e-12)


def test_the_figure_names_both_errors_and_their_references(tmp_path):
    from pinnbench.fieldplot import _title, figure

    tiny_run("burgers", tmp_path, "plot=false")
    problem, model = load_run(tmp_path)
    fig = figure(problem, model, _title(tmp_path, problem))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert f"test MSE {summary['test_mse']:.2e} on the test grid, against the paper's reference data" \
        in fig._suptitle.get_text()
    error_titles = [ax.get_title() for ax in fig.axes if ax.get_title().startswith("|error|")]
    assert error_titles and all("on this slice,\nagainst the exact reference" in t for t in error_titles)
