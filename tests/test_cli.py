"""The command line: bad input fails before training with a readable message; a run reports itself."""

import json

import pytest

from tests.conftest import TINY, run_cli

BAD_INPUT = [
    (["method=nope"], ["method", "adam", "config"]),
    (["problem=nope"], ["problem", "burgers"]),
    (["foo=1"], ["foo", "allowed", "seed"]),
    (["seed=abc"], ["seed"]),
    (["lr=abc"], ["lr=abc: lr takes a number (default 0.001)"]),
    (["-m", "seed=0,x"], ["seed=x: seed takes an integer"]),
    (["quiet=maybe"], ["quiet takes true or false"]),
    (["budget.iterations=many"], ["budget.iterations takes an integer or null"]),
    (["diagnostics.conflict_every=often"], ["diagnostics.conflict_every takes an integer"]),
    (["n_losses=4"], ["n_losses=4", "allowed: 2, 3"]),
    (["budget.iterations=-5"], ["budget.iterations=-5"]),
    (["budget=walltime", "budget.seconds=-1"], ["budget.seconds"]),
    (["problem.size=huge"], ["problem.size='huge'", "cpu, paper"]),
    (["method.foo=1"], ["method.foo", "allowed"]),
    (["problem.nu=fast"], ["nu"]),
    (["device=tpu"], ["device='tpu'", "cpu, cuda"]),
    (["dtype=float16"], ["dtype", "float32, float64"]),
    (["problem.causal.chunk=32"], ["problem.causal.chunk is not an option of problem.causal", "chunks, epsilon"]),
    (["problem=kovasznay", "problem.causal.chunks=32"], ["problem.causal.chunks=32", "steady"]),
    (["problem.inverse.nosie=0.1"], ["problem.inverse.nosie", "enabled, initial, lr, points, noise"]),
    (["problem=schrodinger", "problem.inverse.enabled=true"], ["problem.inverse.enabled", "allowed"]),
]


@pytest.mark.parametrize("overrides, words", BAD_INPUT, ids=[" ".join(o) for o, _ in BAD_INPUT])
def test_bad_input_fails_before_training_with_a_clear_message(tmp_path, overrides, words):
    run_dir = tmp_path / "run"
    result = run_cli("run", *overrides, f"hydra.run.dir={run_dir}", "quiet=true")
    message = result.stderr + result.stdout
    assert result.returncode != 0
    assert "Traceback" not in message
    for word in words:
        assert word in message
    assert not (run_dir / "history.csv").exists() and not (run_dir / "checkpoint.pt").exists()


def test_unknown_command_lists_the_commands():
    result = run_cli("fly")
    assert result.returncode == 2 and "fly" in result.stderr and "run" in result.stderr


def test_run_prints_final_error_and_directory_and_relaunch_says_done(tmp_path):
    run_dir = tmp_path / "run"
    args = ("run", "method=adam", "budget.iterations=20", *TINY, f"hydra.run.dir={run_dir}")
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert "final test MSE" in first.stdout and str(run_dir) in first.stdout
    assert "relative L2" in first.stdout and "against the paper's reference data" in first.stdout
    assert f"pinnbench report {tmp_path} --out reports/{tmp_path.name}" in first.stdout
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["method"] == "adam" and summary["iterations"] == 20
    assert (run_dir / ".hydra" / "config.yaml").exists()
    second = run_cli(*args)
    assert second.returncode == 0 and "nothing to do" in second.stdout


def test_a_diverging_run_exits_non_zero_and_keeps_its_records(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli("run", "method=adam", "budget.iterations=200", "problem.nu=nan", *TINY,
                     f"hydra.run.dir={run_dir}")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "diverged" in result.stderr and "Traceback" not in result.stderr
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "diverged"
    assert (run_dir / "history.csv").exists()


def test_house_errors_are_one_line():
    result = run_cli("run", "lr=abc")
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0, result.stderr
    assert result.stderr.startswith("error: lr=abc")


@pytest.mark.parametrize("reference, other, words", [
    ("paper", "exact", ["against the paper's reference data", "(against the exact reference: MSE 2.000e-02)"]),
    ("exact", "paper", ["against the exact reference", "(against the paper's reference data: MSE 2.000e-02)"]),
])
def test_the_end_of_run_lines_name_the_reference_and_the_next_command(tmp_path, reference, other, words):
    from pinnbench.cli import finished_lines

    summary = {"status": "completed", "iterations": 300, "seconds": 12.0, "test_mse": 1.5e-2, "rel_l2": 0.1,
               "test_reference": reference, f"test_mse_{other}": 2e-2}
    text = finished_lines(summary, tmp_path / "burgers-cpu" / "adam-n3-it300-seed0")
    assert "final test MSE 1.500e-02, relative L2 1.000e-01" in text
    for word in words:
        assert word in text
    assert text.splitlines()[-1] == (f"compare with other runs: pinnbench report {tmp_path / 'burgers-cpu'} "
                                     f"--out reports/burgers-cpu")
