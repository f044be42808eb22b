"""``pinnbench tune``: equal budgets, selection on validation only, resume after a kill, divergence,
several workers on one study, evaluation; tiny Burgers runs in real subprocesses."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from pinnbench.report.tuned import find_studies, read_study, selected_table
from pinnbench.tune import select, trial_value
from tests.conftest import run_cli, tiny_problem

TINY_BURGERS = [*tiny_problem("burgers"), "quiet=true", "plot=false", "problem=burgers", "n_losses=2"]


def tune(sweep_dir: Path, *overrides: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return run_cli("tune", *TINY_BURGERS, f"hydra.sweep.dir={sweep_dir}", *overrides, timeout=timeout)


def studies(sweep_dir: Path) -> dict[str, pd.DataFrame]:
    """Each study's trials by its trainer and budget (``adam-n2-it50``; tiny sizes add a hash to the name)."""
    return {"-".join(path.name.split("-")[:3]): read_study(path)[1] for path in find_studies([sweep_dir])}


def study_dir(sweep_dir: Path, name: str) -> Path:
    return next((sweep_dir / "studies" / "burgers-cpu").glob(f"{name}*"))


def states(frame: pd.DataFrame) -> dict[str, int]:
    return frame["state"].value_counts().to_dict()


# --- selection never reads the test error ------------------------------------------------------
def test_selection_reads_the_objective_only_where_test_and_validation_disagree():
    rows = [{"point": 0, "state": "complete", "value": 0.30, "val_rel_l2": 0.30, "test_mse": 1e-6},
            {"point": 1, "state": "complete", "value": 0.10, "val_rel_l2": 0.10, "test_mse": 9.0},
            {"point": 2, "state": "complete", "value": math.inf, "val_rel_l2": None, "test_mse": None},
            {"point": 3, "state": "fail", "value": None, "val_rel_l2": None, "test_mse": 1e-9}]
    assert select(rows, 3)["point"] == 1  # the lowest validation error, though its test error is the worst
    assert select(rows, 4) is None  # point 3 has no complete trial yet: nothing is selected
    assert select([{**r, "test_mse": -r["value"] if r["value"] else None} for r in rows], 3)["point"] == 1
    tie = [{"point": 1, "state": "complete", "value": 0.5}, {"point": 0, "state": "complete", "value": 0.5}]
    assert select(tie, 2)["point"] == 0


def test_a_selected_table_says_whether_label_free_selection_agrees():
    base = {"problem": "burgers", "size": "cpu", "n_losses": 2, "budget": "iterations", "budget_amount": 50,
            "method": "adam", "objective": "validation", "state": "complete", "status": "completed"}
    frame = pd.DataFrame([{**base, "study": "s", "trial": k, "point": k, "value": v, "val_rel_l2": v, "label_free": lf,
                           "test_mse": t, "rel_l2": t, "param_lr": 10.0 ** -k}
                          for k, (v, lf, t) in enumerate([(0.2, 0.01, 5.0), (0.1, 0.02, 0.001), (0.3, 0.03, 0.0)])])
    row = selected_table(frame).iloc[0]
    assert row["point"] == 1 and row["param_lr"] == 0.1
    assert row["label_free_point"] == 0 and not row["label_free_agrees"]
    assert row["label_free_pick_val_rel_l2"] == 0.2


def test_a_diverged_run_is_a_trial_of_value_infinity_and_a_failed_one_has_none():
    assert trial_value({"status": "diverged"}, "val_rel_l2") == math.inf
    assert trial_value({"status": "completed", "val_rel_l2": float("nan")}, "val_rel_l2") == math.inf
    assert trial_value({"status": "completed", "val_rel_l2": 0.25, "label_free": 3.0}, "label_free") == 3.0
    assert trial_value({"status": "failed", "error": "boom"}, "val_rel_l2") is None


# --- the done-when study ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_methods(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess, subprocess.CompletedProcess]:
    """adam and lra, 4 trials of 50 iterations each; then the same command again with evaluation on 2 seeds."""
    sweep = tmp_path_factory.mktemp("tune")
    first = tune(sweep, "tune.trainers=[adam,lra]", "tune.trials=4", "budget.iterations=50")
    again = tune(sweep, "tune.trainers=[adam,lra]", "tune.trials=4", "budget.iterations=50", "tune.evaluate=true",
                 "tune.eval_seeds=[0,1]")
    return sweep, first, again


def test_two_methods_get_four_complete_trials_each_and_a_relaunch_adds_none(two_methods):
    sweep, first, again = two_methods
    assert first.returncode == 0, first.stdout + first.stderr
    assert again.returncode == 0, again.stdout + again.stderr
    found = studies(sweep)
    assert sorted(found) == ["adam-n2-it50", "lra-n2-it50"]
    for frame in found.values():
        assert states(frame) == {"complete": 4}  # exactly 4 trials, all complete, after the relaunch too
        assert sorted(frame["point"]) == [0, 1, 2, 3] and sorted(frame["seed"]) == [1000, 1001, 1002, 1003]
        assert (frame["value"] == frame["val_rel_l2"]).all()
    assert ": point " in first.stdout and ": point " not in again.stdout  # the relaunch trained no trial
    # paired trials: point k has the same learning rate (and final_lr = 0.1 lr) for both methods
    adam, lra = (found[n].sort_values("point") for n in ("adam-n2-it50", "lra-n2-it50"))
    assert list(adam["param_lr"]) == list(lra["param_lr"])
    assert lra["param_method.beta"].between(0.9, 0.9999).all()
    trial = read_json(study_dir(sweep, "lra-n2-it50") / "trial-002" / "summary.json")
    assert trial["config"]["lr"] == pytest.approx(lra["param_lr"].iloc[2])
    assert trial["config"]["final_lr"] == pytest.approx(0.1 * lra["param_lr"].iloc[2], rel=1e-5)
    assert trial["config"]["method"]["beta"] == pytest.approx(lra["param_method.beta"].iloc[2])
    assert trial["iterations"] == 50 and trial["seed"] == 1002


def read_json(path: Path) -> dict:
    import json

    return json.loads(path.read_text())


def test_the_selected_configuration_is_evaluated_on_the_evaluation_seeds(two_methods):
    sweep, _, again = two_methods
    for name, frame in studies(sweep).items():
        selected = read_json(study_dir(sweep, name) / "selected.json")
        best = frame.loc[frame["value"].idxmin()]
        assert selected["point"] == best["point"] and selected["params"]["lr"] == best["param_lr"]
        runs = sorted((sweep / "evaluation" / "burgers-cpu").glob(f"{name.split('-n')[0]}-n2-it50-seed*"))
        assert [read_json(r / "summary.json")["seed"] for r in runs] == [0, 1]
        for run in runs:
            summary = read_json(run / "summary.json")
            assert summary["status"] == "completed" and summary["config"]["lr"] == pytest.approx(best["param_lr"])


def test_the_report_shows_trials_selections_and_tuned_beside_untuned(two_methods, tmp_path):
    sweep, _, _ = two_methods
    untuned = tmp_path / "untuned"
    result = run_cli("run", "-m", *TINY_BURGERS, "method=adam,lra", "seed=0,1", "budget.iterations=50",
                     f"hydra.sweep.dir={untuned}")
    assert result.returncode == 0, result.stdout + result.stderr
    out = tmp_path / "report"
    result = run_cli("report", str(untuned), "--tuned", str(sweep), "--out", str(out), "--no-figures")
    assert result.returncode == 0, result.stdout + result.stderr
    trials = pd.read_csv(out / "tuned" / "trials.csv")
    assert len(trials) == 8 and set(trials["method"]) == {"adam", "lra"}
    assert {"param_lr", "val_rel_l2", "label_free", "test_mse", "state", "run_dir"} <= set(trials.columns)
    selected = pd.read_csv(out / "tuned" / "selected.csv")
    assert set(selected["method"]) == {"adam", "lra"} and selected["label_free_agrees"].notna().all()
    versus = pd.read_csv(out / "tuned" / "tuned_vs_untuned.csv")
    assert set(zip(versus["method"], versus["tuning"])) == {("adam", "tuned"), ("adam", "untuned"), ("lra", "tuned"),
                                                             ("lra", "untuned")}
    assert (versus["n_seeds"] == 2).all()
    row = versus[(versus["method"] == "lra") & (versus["tuning"] == "tuned")].iloc[0]
    assert 0 <= row["p_improve_over_tuned_adam"] <= 1 and 0 <= row["p_tuned_better_than_untuned"] <= 1
    medians = pd.read_csv(out / "tuned" / "trial_errors.csv")
    assert (medians["complete_trials"] == 4).all()
    assert (out / "summary.md").exists() and "Tuned beside untuned" in (out / "tuned" / "tuned.md").read_text()


def test_a_relaunch_with_other_settings_is_refused_and_exits_non_zero(two_methods):
    sweep, _, _ = two_methods
    result = tune(sweep, "tune.trainers=[adam]", "tune.trials=4", "budget.iterations=50", "tune.seed=7")
    assert result.returncode != 0
    assert "a study made with other settings (seed: 0, now 7)" in result.stderr


# --- divergence, kills, workers --------------------------------------------------------------
def test_a_diverged_trial_is_a_complete_trial_of_value_infinity(tmp_path):
    # learning rates from 1e-3 to 1e60: the upper points (1e35 at point 1) make a loss inf within a few iterations
    result = tune(tmp_path, "tune.trainers=[adam]", "tune.trials=3", "budget.iterations=30",
                  "tune.lr.low=1e-3", "tune.lr.high=1e60")
    assert result.returncode == 0, result.stdout + result.stderr
    frame = studies(tmp_path)["adam-n2-it30"]
    assert states(frame) == {"complete": 3}
    diverged = frame[frame["status"] == "diverged"]
    assert len(diverged) >= 1 and (diverged["value"] == math.inf).all() and (diverged["param_lr"] > 1e5).all()
    assert "selected point" in result.stdout


def _wait_for(path: Path, process: subprocess.Popen, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, "the worker ended before the file appeared"
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def test_a_killed_worker_s_trial_is_failed_then_resumed_and_the_study_ends_with_n_complete(tmp_path):
    args = ["tune.trainers=[adam]", "tune.trials=2", "budget.iterations=3000", "checkpoint_every=20"]
    command = [sys.executable, "-m", "pinnbench", "tune", *TINY_BURGERS, f"hydra.sweep.dir={tmp_path}", *args]
    worker = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(tmp_path / "studies" / "burgers-cpu", worker)
    study = next((tmp_path / "studies" / "burgers-cpu").glob("adam-n2-it3000*"))
    _wait_for(study / "trial-000" / "checkpoint.pt", worker)
    time.sleep(0.5)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    result = tune(tmp_path, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "left running by a worker that stopped; marked failed" in result.stdout
    frame = studies(tmp_path)["adam-n2-it3000"]
    assert states(frame) == {"complete": 2, "fail": 1}
    assert sorted(frame.loc[frame["state"] == "complete", "point"]) == [0, 1]
    summary = read_json(study / "trial-000" / "summary.json")
    assert summary["resumed_from"] >= 20 and summary["iterations"] == 3000  # resumed from its checkpoint


def test_two_workers_share_one_study_and_train_each_point_once(tmp_path):
    result = tune(tmp_path, "tune.trainers=[adam,config]", "tune.trials=4", "budget.iterations=40", "tune.workers=2")
    assert result.returncode == 0, result.stdout + result.stderr
    for frame in studies(tmp_path).values():
        assert states(frame) == {"complete": 4} and sorted(frame["point"]) == [0, 1, 2, 3]
    trained = [line for line in result.stdout.splitlines() if ": point " in line]
    assert len(trained) == 8  # no point trained twice, whichever worker took it


def test_tpe_with_the_label_free_objective_ends_with_n_complete_trials_valued_by_label_free(tmp_path):
    result = tune(tmp_path, "tune.trainers=[lra]", "tune.trials=3", "budget.iterations=20", "tune.sampler=tpe",
                  "tune.objective=label_free")
    assert result.returncode == 0, result.stdout + result.stderr
    frame = studies(tmp_path)["lra-n2-it20"]
    assert states(frame) == {"complete": 3} and sorted(frame["point"]) == [0, 1, 2]
    assert (frame["value"] == frame["label_free"]).all() and (frame["objective"] == "label_free").all()
    assert frame["param_lr"].between(1e-4, 1e-1).all() and frame["param_method.beta"].between(0.9, 0.9999).all()
    trials = pd.read_csv(study_dir(tmp_path, "lra-n2-it20") / "trials.csv")
    assert len(trials) == 3 and set(trials["state"]) == {"complete"}


@pytest.mark.parametrize("override, words", [
    ("tune.trainers=[adam+nosuch]", "names optimizer 'nosuch', not one of configs/optimizer/"),
    ("method.betaa=3", "method.betaa is not an option of method 'config'"),
    ("tune.sampler=grid", "tune.sampler='grid' is not a sampler; allowed: qmc, tpe"),
    ("tune.trials=0", "tune.trials=0 must be a positive number of trials"),
    ("tune.trial_seed=5", "tune.eval_seeds and the trials' seeds"),
])
def test_bad_settings_are_one_line_errors_before_any_trial(tmp_path, override, words):
    result = tune(tmp_path, override)
    assert result.returncode == 2 and words in result.stderr, result.stderr
    assert not (tmp_path / "studies").exists()


def test_the_burgers_study_plans_twelve_trainers_by_two_groupings_informative_ones_first(tmp_path):
    from pinnbench.tune import composing, plan

    overrides = ["+experiment=tuned_burgers_cpu", f"hydra.sweep.dir={tmp_path}"]
    with composing(overrides) as composer:
        planned = plan(composer, overrides)
    names = [s.dir.name for s in planned]
    trainers = ["adam", "config", "mconfig", "adam+soap", "config+soap", "lra", "minmax", "relobralo", "pcgrad",
                "imtlg", "upgrad", "dcgd"]
    assert names == [f"{t}-n{k}-it3000" for k in (2, 3) for t in trainers]
    assert all(s.tune.trials == 16 and s.tune.evaluate and s.tune.eval_seeds == list(range(10)) for s in planned)
    assert all(s.dir.parent == tmp_path / "studies" / "burgers-cpu" for s in planned)
    spaces = {s.dir.name: [d.name for d in s.dims] for s in planned}
    assert spaces["adam-n2-it3000"] == ["lr"] and spaces["adam+soap-n2-it3000"] == ["lr", "optimizer.beta2"]
    assert spaces["relobralo-n3-it3000"] == ["lr", "method.beta", "method.rho", "method.tau"]
    assert not (tmp_path / "studies").exists()  # planning trains nothing
