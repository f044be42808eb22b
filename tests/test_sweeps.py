"""Sweeps: launchers, relaunch without repeated work, failing jobs, locks, experiment configs."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from filelock import FileLock
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from pinnbench import cli, sweep
from pinnbench.cli import _register, config_dir, run_name
from pinnbench.train import prepare, train
from tests.conftest import TINY, compose_config

FAST = ("budget.iterations=5", *TINY)
METHODS = {"adam", "lra", "minmax", "relobralo", "pcgrad", "imtlg", "config", "mconfig"}


def pinnbench_run(*args: str, sweep_dir: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """``pinnbench run ARGS`` in a subprocess, sweeping into ``sweep_dir``; one thread per process,
    so parallel jobs on a small machine do not fight over cores."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "pinnbench", "run", *args, f"hydra.sweep.dir={sweep_dir}"],
                          capture_output=True, text=True, env=env, timeout=timeout)


def hydra_config(*overrides: str):
    """The composed config with its hydra node, as a job of ``pinnbench run -m`` sees it."""
    _register()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            return compose("config", overrides=list(overrides), return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()


def run_dir_of(sweep_dir: Path, *overrides: str) -> Path:
    return sweep_dir / run_name(_root_=hydra_config(*overrides))


def experiment_run_dirs(name: str, seeds: str | None = None) -> list[Path]:
    """The run directories ``+experiment=name`` launches, as the sweep report computes them; with
    ``seeds`` (e.g. "0") the experiment's seed axis narrowed to them (composing every job of a
    10-seed study takes a minute; the seed axis itself is checked by :func:`seed_axis`)."""
    _register()
    GlobalHydra.instance().clear()
    narrowed = [f"hydra.sweeper.params.seed='{seeds}'"] if seeds is not None else []
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose("config", overrides=[f"+experiment={name}", *narrowed], return_hydra_config=True)
            return sweep.sweep_run_dirs(cfg, GlobalHydra.instance().config_loader())
    finally:
        GlobalHydra.instance().clear()


def seed_axis(name: str) -> str:
    """The seed values ``+experiment=name`` sweeps, as written in its file."""
    return str(hydra_config(f"+experiment={name}").hydra.sweeper.params.seed)


def fingerprints(root: Path) -> dict[str, tuple[str, int]]:
    """(sha256, mtime in ns) of every file in every run directory below ``root``."""
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "multirun.yaml"
            and ".submitit" not in p.parts}


def summaries(root: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in root.rglob("summary.json")}


# --- run directory names -----------------------------------------------------------------------

def test_run_directory_name_is_a_pure_function_of_the_overrides():
    base = ("problem=burgers", "method=adam", "n_losses=2", "seed=1", "budget.iterations=50")
    name = run_name(_root_=hydra_config(*base))
    assert name == "burgers-cpu/adam-n2-it50-seed1"
    assert run_name(_root_=hydra_config(*reversed(base))) == name
    assert run_name(_root_=hydra_config(*base, "quiet=true", "device=cpu", "eval_every=7")) == name
    assert run_name(_root_=hydra_config(*base[1:])) == name  # burgers is the default problem
    other = run_name(_root_=hydra_config(*base, "lr=0.01"))
    assert other.startswith(name + "-") and other == run_name(_root_=hydra_config("lr=0.01", *base))
    assert run_name(_root_=hydra_config(*base, "lr=0.02")) != other
    assert run_name(_root_=hydra_config(*base[:-1], "budget=walltime", "budget.seconds=30")) == \
        "burgers-cpu/adam-n2-wall30s-seed1"
    # a run of an experiment lands where the same run launched by hand does
    assert run_name(_root_=hydra_config("+experiment=paper_iterations_cpu", *base)) == name


# --- launchers, relaunch -----------------------------------------------------------------------

def test_joblib_sweep_writes_every_summary_and_a_relaunch_redoes_nothing(tmp_path):
    args = ("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "method=adam,config", "seed=0,1",
            "checkpoint_every=5", *FAST)
    first = pinnbench_run(*args, sweep_dir=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    runs = {(m, s): run_dir_of(tmp_path, f"method={m}", f"seed={s}", *FAST) for m in ("adam", "config") for s in (0, 1)}
    done = summaries(tmp_path)
    assert sorted(done) == sorted(d.name for d in runs.values())
    assert {s["status"] for s in done.values()} == {"completed"}
    assert "4 completed, 0 diverged, 0 failed, 0 skipped" in first.stdout
    for run_dir in (tmp_path / "burgers-cpu").iterdir():
        assert (run_dir / ".hydra" / "config.yaml").exists() and (run_dir / ".lock").exists()

    before = fingerprints(tmp_path)
    second = pinnbench_run(*args, sweep_dir=tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "0 completed, 0 diverged, 0 failed, 4 skipped (4 already completed)" in second.stdout
    assert second.stdout.count("nothing to do") == 4
    assert fingerprints(tmp_path) == before  # not one byte nor one timestamp changed, .hydra/ included

    # one run interrupted after its checkpoint, one never started: only those two do any work
    interrupted, missing = runs["adam", 0], runs["config", 1]
    (interrupted / "summary.json").unlink()
    shutil.rmtree(missing)
    others = (str(runs["adam", 1].relative_to(tmp_path)), str(runs["config", 0].relative_to(tmp_path)))
    untouched = {k: v for k, v in fingerprints(tmp_path).items() if k.startswith(others)}
    third = pinnbench_run(*args, sweep_dir=tmp_path)
    assert third.returncode == 0, third.stdout + third.stderr
    assert f"{interrupted}: resuming from iteration 5" in third.stdout
    assert "2 completed, 0 diverged, 0 failed, 2 skipped (2 already completed)" in third.stdout
    assert summaries(tmp_path)[missing.name]["iterations"] == 5
    assert {k: v for k, v in fingerprints(tmp_path).items() if k in untouched} == untouched


def test_submitit_local_sweep_writes_every_summary(tmp_path):
    result = pinnbench_run("-m", "hydra/launcher=submitit_local", "method=adam", "seed=0,1", *FAST, sweep_dir=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert {k: s["status"] for k, s in summaries(tmp_path).items()} == \
        {run_dir_of(tmp_path, "method=adam", f"seed={s}", *FAST).name: "completed" for s in (0, 1)}
    assert "2 completed, 0 diverged, 0 failed, 0 skipped" in result.stdout


# --- failing jobs ------------------------------------------------------------------------------

@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_a_diverging_and_a_crashing_job_leave_the_others_running_and_the_sweep_fails(tmp_path, launcher):
    # lr=1e30 makes a loss inf within 10 iterations; width 0 crashes while the network is built
    args = ("-m", f"hydra/launcher={launcher}", "method=adam", "lr=0.001,1e30", "problem.sizes.cpu.width=50,0",
            "budget.iterations=20", *TINY)
    result = pinnbench_run(*args, sweep_dir=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 completed, 1 diverged, 2 failed, 0 skipped" in result.stdout
    by_status: dict[str, list[str]] = {}
    for name, summary in summaries(tmp_path).items():
        by_status.setdefault(summary["status"], []).append(name)
    assert {k: len(v) for k, v in by_status.items()} == {"completed": 1, "diverged": 1, "failed": 2}
    for name in by_status["failed"]:
        summary = summaries(tmp_path)[name]
        assert summary["error"].startswith("ZeroDivisionError") and summary["method"] == "adam"
        log = (tmp_path / "burgers-cpu" / name / "pinnbench.log").read_text()
        assert "Traceback" in log and "ZeroDivisionError" in log
        line = next(line for line in result.stdout.splitlines() if str(tmp_path / "burgers-cpu" / name) in line
                    and "log:" in line)
        assert line.split()[0] == "failed" and "ZeroDivisionError" in line
    assert summaries(tmp_path)[by_status["completed"][0]]["iterations"] == 20

    finished = {k: v for k, v in fingerprints(tmp_path).items() if not any(f in k for f in by_status["failed"])}
    again = pinnbench_run(*args, sweep_dir=tmp_path)  # failed runs are tried again, finished ones left alone
    assert again.returncode == 1
    assert "0 completed, 0 diverged, 2 failed, 2 skipped (1 already completed, 1 already diverged)" in again.stdout
    assert {k: v for k, v in fingerprints(tmp_path).items() if k in finished} == finished


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given without a GPU")
def test_device_cuda_without_a_gpu_is_a_clear_error(tmp_path):
    single = pinnbench_run("device=cuda", *FAST, f"hydra.run.dir={tmp_path / 'one'}", sweep_dir=tmp_path)
    assert single.returncode == 2 and "Traceback" not in single.stderr
    assert "device=cuda was asked for, but PyTorch sees no CUDA GPU here" in single.stderr
    many = pinnbench_run("-m", "device=cuda", "seed=0,1", *FAST, sweep_dir=tmp_path)
    assert many.returncode == 1 and "0 completed, 0 diverged, 2 failed" in many.stdout
    assert many.stdout.count("ConfigError: device=cuda was asked for") == 2
    # an experiment is a sweep even without -m; its launch is not refused for want of the jobs' GPU
    experiment = pinnbench_run("+experiment=paper_iterations_cpu", "+experiment/paper_iterations=burgers_n2",
                               "device=cuda", "method=adam", "seed=0", *FAST, sweep_dir=tmp_path)
    assert experiment.returncode == 1 and "sweep of 1 runs" in experiment.stdout
    assert "ConfigError: device=cuda was asked for" in experiment.stdout


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("method", ["config", "mconfig"])
def test_device_cuda_trains_on_the_gpu_as_on_the_cpu(tmp_path, method):
    common = (*FAST, f"method={method}", "dtype=float64", "compile=false", "fast=true")
    on_gpu = train(prepare(compose_config(*common, "device=cuda")), tmp_path / "gpu")
    on_cpu = train(prepare(compose_config(*common, "device=cpu")), tmp_path / "cpu")
    assert on_gpu["status"] == "completed" and on_gpu["device"].startswith("cuda")
    assert on_gpu["test_mse"] == pytest.approx(on_cpu["test_mse"], rel=1e-6)


# --- locks -------------------------------------------------------------------------------------

def test_a_run_locked_by_another_process_is_skipped_and_left_alone(tmp_path):
    busy = run_dir_of(tmp_path, "method=adam", "seed=0", *FAST)
    busy.mkdir(parents=True)
    with FileLock(busy / ".lock"):
        result = pinnbench_run("-m", "method=adam", "seed=0,1", *FAST, sweep_dir=tmp_path)
        single = pinnbench_run("method=adam", "seed=0", *FAST, f"hydra.run.dir={busy}", sweep_dir=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{busy}: locked by another process" in result.stdout
    assert "1 completed, 0 diverged, 0 failed, 1 skipped (1 running elsewhere)" in result.stdout
    assert single.returncode == 0 and f"{busy}: locked by another process" in single.stdout
    assert [p.name for p in busy.iterdir()] == [".lock"]  # nothing written into the locked run
    assert summaries(tmp_path).keys() == {run_dir_of(tmp_path, "method=adam", "seed=1", *FAST).name}


# --- the missing extra -------------------------------------------------------------------------

@pytest.mark.parametrize("launcher, module", [("joblib", "hydra_plugins.hydra_joblib_launcher"),
                                              ("submitit_local", "submitit"),
                                              ("slurm", "hydra_plugins.hydra_submitit_launcher")])
def test_a_launcher_without_the_cluster_extra_names_the_extra(monkeypatch, capsys, launcher, module):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run", "-m", f"hydra/launcher={launcher}", "seed=0,1"])
    message = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert f"hydra/launcher={launcher}" in message and 'pip install "pinnbench[cluster]"' in message
    assert module in message


# --- the experiments ---------------------------------------------------------------------------

def _parts(run_dir: Path) -> tuple[str, str, str, str, str]:
    """(problem, method, n<k>, budget label, seed) of ``runs/<problem>-<size>/<method>-n<k>-<budget>-seed<s>``."""
    problem = run_dir.parent.name.rsplit("-", 1)[0]
    method, losses, budget, seed = run_dir.name.split("-")
    return problem, method, losses, budget, seed


@pytest.mark.parametrize("name, budget", [("paper_iterations", "it"), ("paper_walltime", "wall")])
def test_paper_experiments_launch_the_whole_study_without_kovasznay_with_three_losses(name, budget):
    assert seed_axis(name) == "0,1,2"
    dirs = experiment_run_dirs(name, seeds="0,2")
    assert len(dirs) == len(set(dirs)) == 7 * 8 * 2
    parts = [_parts(d) for d in dirs]
    assert {d.parent.name for d in dirs} == {f"{p}-paper" for p in ("burgers", "schrodinger", "kovasznay", "beltrami")}
    cells = {(p, k) for p, _, k, _, _ in parts}
    assert cells == {(p, k) for p in ("burgers", "schrodinger", "beltrami") for k in ("n2", "n3")} | {("kovasznay", "n2")}
    assert {m for _, m, _, _, _ in parts} == METHODS and {s for *_, s in parts} == {"seed0", "seed2"}
    per_problem = {}
    for problem, _, _, label, _ in parts:
        assert label.startswith(budget)
        per_problem.setdefault(problem, set()).add(label)
    assert all(len(labels) == 1 for labels in per_problem.values())  # one budget per problem
    if budget == "it":
        assert per_problem["burgers"] == {"it30000"} and per_problem["beltrami"] == {"it100000"}


@pytest.mark.parametrize("name, budget", [("paper_iterations_cpu", "it"), ("paper_walltime_cpu", "walladam")])
def test_cpu_experiments_sweep_the_papers_cells_at_cpu_size_into_their_own_directory(name, budget):
    assert seed_axis(name) == "0,1,2"
    dirs = experiment_run_dirs(name, seeds="0")
    assert len(dirs) == len(set(dirs)) == 7 * 8
    assert {d.parent.name for d in dirs} == {f"{p}-cpu" for p in ("burgers", "schrodinger", "kovasznay", "beltrami")}
    assert {d.parent.parent for d in dirs} == {Path("runs/paper_cpu")}
    parts = [_parts(d) for d in dirs]
    assert {m for _, m, _, _, _ in parts} == METHODS and {s for *_, s in parts} == {"seed0"}
    assert all(label.startswith(budget) for *_, label, _ in parts)
    if budget == "it":
        assert Path("runs/paper_cpu/burgers-cpu/adam-n2-it3000-seed0") in dirs  # no hash: as if launched by hand


def test_the_burgers_study_has_nine_methods_ten_seeds_and_pairs_each_wall_time_run_with_its_adam_run():
    assert seed_axis("burgers_cpu_iterations") == seed_axis("burgers_cpu_walltime") == "range(10)"
    iterations = experiment_run_dirs("burgers_cpu_iterations", seeds="3,9")
    walltime = experiment_run_dirs("burgers_cpu_walltime", seeds="3,9")
    assert len(set(iterations)) == len(set(walltime)) == 9 * 2 * 2
    assert {_parts(d)[4] for d in iterations} == {"seed3", "seed9"}
    assert {_parts(d)[1] for d in iterations} == METHODS | {"upgrad"}
    assert {d.name.replace("walladam", "it3000") for d in walltime} == {d.name for d in iterations}


# --- optimisers and the finishing phase in names and experiments ----------------------------------

def test_a_non_default_optimiser_or_finish_is_spelt_out_and_their_options_hashed():
    from pinnbench.naming import adam_run_name

    base = ("method=config", "n_losses=3", "seed=0", "budget.iterations=50")
    plain = run_name(_root_=hydra_config(*base))
    assert plain == "burgers-cpu/config-n3-it50-seed0"
    assert run_name(_root_=hydra_config(*base, "optimizer=adam", "finish=none")) == plain  # the defaults
    soap = run_name(_root_=hydra_config(*base, "optimizer=soap"))
    assert soap == "burgers-cpu/config+soap-n3-it50-seed0"
    assert run_name(_root_=hydra_config(*base, "optimizer=soap", "finish=lbfgs")) == \
        "burgers-cpu/config+soap+lbfgs-n3-it50-seed0"
    tuned = run_name(_root_=hydra_config(*base, "optimizer=soap", "optimizer.precondition_frequency=10"))
    assert tuned.startswith(soap + "-") and tuned != run_name(_root_=hydra_config(
        *base, "optimizer=soap", "optimizer.precondition_frequency=5"))
    assert run_name(_root_=hydra_config(*base, "finish=lbfgs", "finish.iterations=20")).startswith(
        "burgers-cpu/config+lbfgs-n3-it50-seed0-")
    # equal wall time: every trainer gets the seconds of plain Adam's run
    walltime = hydra_config(*base[:-1], "optimizer=muon", "optimizer.momentum=0.9", "finish=lbfgs",
                            "finish.share=0.3", "budget=walltime", "budget.seconds=adam")
    assert adam_run_name(walltime, "burgers", walltime.hydra.overrides.task) == "burgers-cpu/adam-n3-it3000-seed0"


def test_the_optimiser_study_sweeps_twelve_trainers_over_ten_seeds_into_distinct_directories():
    assert seed_axis("optimizers_burgers_cpu") == "range(10)"
    dirs = experiment_run_dirs("optimizers_burgers_cpu", seeds="0,7")
    assert len(dirs) == len(set(dirs)) == 12 * 2 and {d.parent.name for d in dirs} == {"burgers-cpu"}
    trainers = {_parts(d)[1] for d in dirs}
    assert trainers == {"adam", "adam+soap", "adam+muon", "config", "config+soap", "config+muon", "mconfig", "upgrad",
                        "upgrad+soap", "upgrad+muon", "adam+lbfgs", "config+lbfgs"}
    assert {_parts(d)[2:4] for d in dirs} == {("n3", "walladam")}
    assert {_parts(d)[4] for d in dirs} == {"seed0", "seed7"}
    # the plain trainers are the runs of the Burgers wall-time study, in the same directories
    assert {d for d in dirs if "+" not in d.name} <= set(experiment_run_dirs("burgers_cpu_walltime", seeds="0,7"))


def test_the_step_supplement_of_the_optimiser_study_sweeps_its_ten_unfinished_trainers_over_three_seeds():
    assert seed_axis("optimizers_steps_burgers_cpu") == "range(3)"
    dirs = experiment_run_dirs("optimizers_steps_burgers_cpu", seeds="0,2")
    assert len(dirs) == len(set(dirs)) == 10 * 2 and {d.parent.parent for d in dirs} == {Path("runs/optimizers_steps")}
    assert {_parts(d)[1] for d in dirs} == {"adam", "adam+soap", "adam+muon", "config", "config+soap", "config+muon",
                                            "mconfig", "upgrad", "upgrad+soap", "upgrad+muon"}
    assert {_parts(d)[2:4] for d in dirs} == {("n3", "it3000")}
    cfg = compose_config("+experiment/optimizers_burgers_cpu=config_soap", "+experiment=optimizers_steps_burgers_cpu",
                         "problem.size=cpu", "n_losses=3", "budget=iterations", *TINY)
    assert prepare(cfg).run.diagnostics.conflict_every == 10


@pytest.mark.parametrize("cell", ["config_soap", "mconfig", "adam_lbfgs", "upgrad_muon"])
def test_each_cell_of_the_optimiser_study_composes_to_a_valid_run(cell):
    cfg = compose_config(f"+experiment/optimizers_burgers_cpu={cell}", "+experiment=optimizers_burgers_cpu",
                         "problem.size=cpu", "n_losses=3", "budget=walltime", "budget.seconds=30", *TINY)
    method, _, rest = cell.partition("_")
    setup = prepare(cfg)
    assert setup.run.budget.clock == "process" and setup.run.diagnostics.conflict_every == 50
    assert setup.method_options.name == ("torchjd" if method == "upgrad" else method)
    assert setup.optimizer.options.name == (rest if rest in ("soap", "muon") else "adam")
    assert setup.finish.options.name == ("lbfgs" if rest == "lbfgs" else "none")


def test_the_methods_beyond_study_shares_the_burgers_study_s_baselines():
    assert seed_axis("methods_beyond_cpu_iterations") == seed_axis("methods_beyond_cpu_walltime") == "range(10)"
    iterations = experiment_run_dirs("methods_beyond_cpu_iterations", seeds="4")
    walltime = experiment_run_dirs("methods_beyond_cpu_walltime", seeds="4")
    assert len(set(iterations)) == len(set(walltime)) == 7 * 3
    assert {_parts(d)[1] for d in iterations} == {"adam", "config", "mconfig", "upgrad", "dcgd", "gradnorm", "ntk"}
    assert {(d.parent.name, _parts(d)[2]) for d in iterations} == {("burgers-cpu", "n2"), ("burgers-cpu", "n3"),
                                                                  ("kovasznay-cpu", "n2")}
    assert {d.name.replace("walladam", "it6000" if "kovasznay" in d.parent.name else "it3000") for d in walltime} \
        == {d.name for d in iterations}
    burgers = set(experiment_run_dirs("burgers_cpu_iterations", seeds="4"))
    assert {d for d in iterations if _parts(d)[1] in ("adam", "config", "mconfig", "upgrad")
            and d.parent.name == "burgers-cpu"} <= burgers


def test_causal_and_inverse_experiments_compose_to_valid_runs():
    causal = compose_config("+experiment=causal_burgers_cpu", "problem=burgers", "problem.size=cpu",
                            "problem.causal.chunks=32", "n_losses=2", "method=config", *TINY)
    assert prepare(causal).problem.options.causal.chunks == 32
    causal_dirs = experiment_run_dirs("causal_burgers_cpu", seeds="0")  # hashed: problem.causal.chunks is a variant
    assert {d.name.split("-")[0] for d in causal_dirs} == {"adam", "config", "mconfig"} and len(causal_dirs) == 6
    inverse = compose_config("+experiment=inverse_burgers_cpu", "problem=burgers", "problem.size=cpu",
                             "problem.inverse.enabled=true", "problem.inverse.points=2000", "n_losses=3",
                             "method=mconfig", *TINY)
    setup = prepare(inverse)
    assert setup.finish.options.name == "lbfgs" and setup.finish.options.iterations == 1500
    assert setup.problem.options.inverse.enabled and setup.problem.options.inverse.points == 2000
    dirs = experiment_run_dirs("inverse_burgers_cpu", seeds="0")
    assert {d.name.split("-")[0] for d in dirs} == {"adam+lbfgs", "config+lbfgs", "mconfig+lbfgs"}
