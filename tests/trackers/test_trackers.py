"""Experiment trackers (``logger=``), read back with each tracker's own reader: a sweep leaves one
group of two tracker runs whose values equal ``history.csv``, also after a SIGKILL and a relaunch."""

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

from pinnbench import records, trackers
from pinnbench.errors import ConfigError
from pinnbench.naming import extra_overrides
from pinnbench.trackers.tensorboard import TensorBoard
from pinnbench.train import prepare, train
from tests.conftest import TINY, compose_config, run_cli
from tests.trackers.readers import READERS, TOLERANCE, mlflow_runs

SWEEP = ("problem=burgers", "method=adam,config", "budget.iterations=200", "log_every=5", "checkpoint_every=20",
         "eval_every=50", *[o for o in TINY if o != "plot=false"], "problem.sizes.cpu.width=16",
         "problem.sizes.cpu.hidden_layers=2")


def _launch(sweep_dir: Path, logger: str, *args: str) -> subprocess.Popen:
    """``pinnbench run -m SWEEP logger=<logger>`` into ``sweep_dir`` (or ``pinnbench run ARGS``), in a
    session of its own, so that killing it kills W&B's service process too."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", WANDB_SILENT="true")
    args = args or ("-m", *SWEEP, f"logger={logger}", f"hydra.sweep.dir={sweep_dir}")
    return subprocess.Popen([sys.executable, "-m", "pinnbench", "run", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)


def kill_once_sent(process: subprocess.Popen, run_dirs, logger: str, at: int) -> Path | None:
    """SIGKILL ``process`` (its whole session) once the first of ``run_dirs()`` has handed rows up to
    iteration ``at`` to ``logger``; that run directory (None when the process ended first)."""
    deadline = time.monotonic() + 240
    run_dir = None
    while time.monotonic() < deadline and process.poll() is None:
        found = run_dirs()
        if found and _sent_through(found[0], logger) >= at:
            run_dir = found[0]
            break
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
    return run_dir


def _sent_through(run_dir: Path, logger: str) -> int:
    try:
        return records.read_json(run_dir / trackers.STATE)[logger]["sent_through"]
    except (OSError, ValueError, KeyError):
        return -1


def kill_and_relaunch(sweep_dir: Path, logger: str) -> tuple[list[Path], str]:
    """Launch the sweep, SIGKILL it (its whole process group) once the first run has handed rows to
    the tracker and before it finishes, relaunch it to the end; the run directories and the output."""
    run_dir = kill_once_sent(_launch(sweep_dir, logger), lambda: sorted(sweep_dir.glob("burgers-cpu/adam-*")),
                             logger, 60)
    assert run_dir is not None and records.read_summary(run_dir) is None, "the sweep was not killed mid-run"
    second = _launch(sweep_dir, logger)
    out, _ = second.communicate(timeout=300)
    assert second.returncode == 0, out
    return sorted(sweep_dir.glob("burgers-cpu/*")), out


@pytest.fixture(scope="module", params=sorted(READERS))
def killed_sweep(request, tmp_path_factory):
    logger = request.param
    sweep_dir = tmp_path_factory.mktemp(f"study_{logger}")
    run_dirs, out = kill_and_relaunch(sweep_dir, logger)
    return logger, sweep_dir, run_dirs, out


def _history_series(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    history = pd.read_csv(run_dir / records.HISTORY)
    return {column: [(int(i), float(v)) for i, v in zip(history.iteration, history[column]) if pd.notna(v)]
            for column in history.columns if column != "iteration" and pd.api.types.is_numeric_dtype(history[column])}


def test_a_killed_and_relaunched_sweep_leaves_one_group_of_runs_equal_to_their_histories(killed_sweep):
    logger, sweep_dir, run_dirs, out = killed_sweep
    assert "resuming from iteration" in out and len(run_dirs) == 2
    held = {d: READERS[logger](d, sweep_dir) for d in run_dirs}
    assert {h.group for h in held.values()} == {sweep_dir.name}  # grouped by study
    for run_dir, h in held.items():
        summary = records.read_summary(run_dir)
        assert summary["status"] == "completed" and h.figure
        assert run_dir.name in h.name
        expected = _history_series(run_dir)
        assert len(expected["seconds"]) == 200 // 5 + 1
        for column, want in expected.items():
            got = h.series[column]
            assert [s for s, _ in got] == [s for s, _ in want], f"{logger} {column}: steps differ (each once)"
            for (_, a), (_, b) in zip(got, want):
                assert a == pytest.approx(b, rel=TOLERANCE[logger], abs=1e-30), f"{logger} {column}"
        assert h.series["summary/test_mse"][-1][1] == pytest.approx(summary["test_mse"], rel=TOLERANCE[logger])
        assert summary["trackers"][logger]["sent_through"] == 200
    resumed = [records.read_summary(d)["resumed_from"] for d in run_dirs]
    assert max(resumed) > 0  # the killed run continued its tracker run


@pytest.mark.parametrize("killed_sweep", ["mlflow", "wandb"], indirect=True)  # TensorBoard's: see below
def test_the_configuration_is_logged_as_hyperparameters(killed_sweep):
    logger, sweep_dir, run_dirs, _ = killed_sweep
    h = READERS[logger](run_dirs[0], sweep_dir)
    config = trackers.flat_params(records.read_summary(run_dirs[0])["config"])
    assert {"lr", "seed", "problem.size", "method.name", "budget.iterations"} <= set(h.params)
    for key in ("lr", "seed", "problem.size", "method.name"):
        assert str(h.params[key]) == str(config[key])


@pytest.mark.parametrize("killed_sweep", ["mlflow"], indirect=True)
def test_mlflow_sweep_is_one_experiment_of_two_runs(killed_sweep):
    logger, sweep_dir, run_dirs, _ = killed_sweep
    experiments = {name: runs for name, runs in mlflow_runs(sweep_dir).items() if runs}
    assert list(experiments) == [sweep_dir.name]
    runs = experiments[sweep_dir.name]
    assert sorted(r.info.run_name for r in runs) == sorted(f"burgers-cpu/{d.name}" for d in run_dirs)
    assert {r.info.status for r in runs} == {"FINISHED"}


# ----- in-process runs --------------------------------------------------------------------------------
class Interrupt(Exception):
    pass


WIDTH = ("problem.sizes.cpu.width=16", "problem.sizes.cpu.hidden_layers=2")


def setup_for(*overrides):
    return prepare(compose_config(*TINY, *WIDTH, *overrides))


def test_a_logger_added_on_resume_receives_the_rows_from_the_start(tmp_path):
    args = ("method=adam", "budget.iterations=60", "log_every=5", "checkpoint_every=20")

    def stop_at_30(iteration):
        if iteration == 30:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(setup_for(*args), tmp_path / "run", on_iteration=stop_at_30)
    train(setup_for(*args, "logger=tensorboard"), tmp_path / "run")
    held = READERS["tensorboard"](tmp_path / "run", tmp_path)
    assert [s for s, _ in held.series["seconds"]] == list(range(0, 61, 5))


def test_tensorboard_records_the_hyperparameters(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    train(setup_for("method=adam", "budget.iterations=10", "logger=tensorboard"), tmp_path / "run")
    accumulator = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    accumulator.Reload()
    content = accumulator.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    assert start.hparams["lr"].number_value == pytest.approx(1e-3)
    assert start.hparams["method.name"].string_value == "adam"


def test_a_tracker_failing_during_training_warns_once_and_the_run_goes_on(tmp_path, capsys):
    run_dir = tmp_path / "study" / "run"

    def break_the_store(iteration):
        if iteration == 30:  # the store's file no longer a database: every later write fails
            (tmp_path / "study" / "mlflow.db").write_bytes(b"not a database" * 100)

    summary = train(setup_for("method=adam", "budget.iterations=60", "log_every=5", "checkpoint_every=20",
                              "logger=[mlflow,tensorboard]"), run_dir, on_iteration=break_the_store)
    err = capsys.readouterr().err
    assert summary["status"] == "completed"
    assert err.count("warning: logger mlflow failed") == 1 and "records" in err
    assert len(pd.read_csv(run_dir / records.HISTORY)) == 60 // 5 + 1
    assert summary["trackers"]["mlflow"]["sent_through"] == 20  # what it had before it failed
    assert summary["trackers"]["tensorboard"]["sent_through"] == 60  # the other tracker unaffected


def test_a_tracker_that_cannot_start_warns_and_the_run_goes_on(tmp_path, capsys):
    summary = train(setup_for("method=adam", "budget.iterations=10", "logger=tensorboard",
                              "logger.tensorboard.subdir=/proc/no/such/dir"), tmp_path / "run")
    assert summary["status"] == "completed"
    assert capsys.readouterr().err.count("warning: logger tensorboard failed while starting") == 1


# ----- configuration ------------------------------------------------------------------------------------
def test_several_loggers_at_once_and_none_by_default():
    assert [cls.name for cls, _ in setup_for("logger=[tensorboard,mlflow]").trackers] == ["tensorboard", "mlflow"]
    assert setup_for().trackers == []


def test_an_unknown_logger_is_a_one_line_error_naming_the_allowed_ones():
    result = run_cli("run", "logger=tensorbored")
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: logger=tensorbored is not one of configs/logger/; "
                                     "allowed: mlflow, none, tensorboard, wandb.")


def test_a_logger_option_is_typed():
    with pytest.raises(ConfigError, match=r"logger.tensorboard.subdri is not an option"):
        setup_for("logger=tensorboard", "+logger.tensorboard.subdri=x")
    with pytest.raises(ConfigError, match=r"logger.wandb.mode='cloud' is not a mode; allowed: offline, online"):
        setup_for("logger=wandb", "logger.wandb.mode=cloud")


def test_a_missing_package_is_an_error_before_training_naming_the_extra(monkeypatch):
    monkeypatch.setattr(TensorBoard, "packages", ("pinnbench_no_such_package",))
    with pytest.raises(ConfigError) as error:
        setup_for("logger=tensorboard")
    assert str(error.value) == ("logger=tensorboard needs the pinnbench_no_such_package package, which is not "
                                "installed; install it with pip install 'pinnbench[trackers]'.")


def test_loggers_leave_the_run_name_and_the_recorded_configuration_alone():
    assert extra_overrides(["logger=[mlflow,wandb]", "logger.mlflow.experiment=x", "seed=1"]) == []
    from pinnbench.train import resolved_config

    assert resolved_config(setup_for("logger=mlflow")) == resolved_config(setup_for())


def test_a_run_whose_mlflow_store_was_deleted_starts_a_new_mlflow_run_with_all_its_rows(tmp_path):
    run_dir = tmp_path / "study" / "run"
    args = (*TINY, *WIDTH, "method=adam", "budget.iterations=200", "log_every=5", "checkpoint_every=20",
            "logger=mlflow", f"hydra.run.dir={run_dir}")
    assert kill_once_sent(_launch(run_dir, "mlflow", *args), lambda: [run_dir], "mlflow", 40) == run_dir
    first = records.read_json(run_dir / trackers.STATE)["mlflow"]["run_id"]
    (tmp_path / "study" / "mlflow.db").unlink()
    relaunch = run_cli("run", *args)
    assert relaunch.returncode == 0, relaunch.stderr
    summary = records.read_summary(run_dir)
    assert summary["resumed_from"] >= 40 and summary["trackers"]["mlflow"]["run_id"] != first
    held = READERS["mlflow"](run_dir, tmp_path / "study")
    assert [s for s, _ in held.series["seconds"]] == list(range(0, 201, 5))


@pytest.mark.parametrize("killed_sweep", ["wandb"], indirect=True)
def test_a_wandb_file_cut_off_by_a_kill_reads_as_a_prefix(killed_sweep, tmp_path):
    from pinnbench.trackers.wandb import offline_history

    _, _, run_dirs, _ = killed_sweep
    run_id = records.read_summary(run_dirs[1])["trackers"]["wandb"]["run_id"]
    whole = offline_history(run_dirs[1], run_id)
    (source,) = (run_dirs[1] / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb")
    lengths = []
    for cut in [7] + [source.stat().st_size * tenth // 10 for tenth in range(1, 10)]:  # the header alone, ...
        folder = tmp_path / str(cut) / "wandb" / source.parent.name
        folder.mkdir(parents=True)
        (folder / source.name).write_bytes(source.read_bytes()[:cut])
        prefix = offline_history(tmp_path / str(cut), run_id)
        assert prefix == whole[:len(prefix)]
        lengths.append(len(prefix))
    assert lengths[0] == 0 and any(0 < n < len(whole) for n in lengths) and lengths == sorted(lengths)
