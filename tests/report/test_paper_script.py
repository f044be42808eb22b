"""scripts/paper.sh: both sweeps, then the report, with a stand-in for the pinnbench command."""

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "paper.sh"


def run_script(tmp_path, *args, sweep_status=0):
    log = tmp_path / "calls.txt"
    stub = tmp_path / "pinnbench"
    stub.write_text(f'#!/bin/sh\necho "$@" >> {log}\n[ "$1" = run ] && exit {sweep_status}\nexit 0\n')
    stub.chmod(0o755)
    result = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, cwd=tmp_path,
                            env=dict(os.environ, PINNBENCH=str(stub)), timeout=60)
    return result, log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize("scale, suffix, results",
                         [("cpu", "_cpu", "paper_cpu"), ("paper", "", "paper")])
def test_sweeps_then_report(tmp_path, scale, suffix, results):
    result, calls = run_script(tmp_path, scale, "device=cuda")
    assert result.returncode == 0, result.stderr
    assert calls == [f"run -m +experiment=paper_iterations{suffix} hydra.sweep.dir=runs/{results} device=cuda",
                     f"run -m +experiment=paper_walltime{suffix} hydra.sweep.dir=runs/{results} device=cuda",
                     f"report results/{results}/runs --out results/{results}"]


def test_the_new_runs_are_packed_and_the_report_reads_the_packed_records(tmp_path):
    (tmp_path / "runs" / "paper_cpu").mkdir(parents=True)
    result, calls = run_script(tmp_path, "cpu")
    assert result.returncode == 0, result.stderr
    assert calls[-2:] == ["pack runs/paper_cpu results/paper_cpu/runs",
                          "report results/paper_cpu/runs --out results/paper_cpu"]


def test_packed_committed_records_are_expanded_into_the_sweep_and_the_new_runs_packed_beside_them(tmp_path):
    committed = tmp_path / "results" / "paper_cpu" / "runs"
    committed.mkdir(parents=True)
    (committed / "part-0000-summaries.parquet").write_bytes(b"")
    (tmp_path / "runs" / "paper_cpu").mkdir(parents=True)
    result, calls = run_script(tmp_path, "cpu")
    assert result.returncode == 0, result.stderr
    assert calls[0] == "expand results/paper_cpu/runs runs/paper_cpu"
    assert calls[-2] == "pack runs/paper_cpu results/paper_cpu/runs"


def test_a_study_still_in_run_directories_gets_compact_records(tmp_path):
    (tmp_path / "results" / "paper_cpu" / "runs" / "burgers-cpu").mkdir(parents=True)
    (tmp_path / "runs" / "paper_cpu").mkdir(parents=True)
    result, calls = run_script(tmp_path, "cpu")
    assert result.returncode == 0, result.stderr
    assert calls[-2] == "compact runs/paper_cpu results/paper_cpu/runs"


def test_a_sweep_with_failed_runs_still_gets_its_report_and_fails(tmp_path):
    result, calls = run_script(tmp_path, "cpu", sweep_status=1)
    assert result.returncode == 1 and calls[-1].startswith("report results/paper_cpu/runs")


def test_a_refused_configuration_stops_and_a_bad_scale_is_a_usage_error(tmp_path):
    result, calls = run_script(tmp_path, "cpu", sweep_status=2)
    assert result.returncode == 2 and len(calls) == 1
    (tmp_path / "bad").mkdir()
    result, calls = run_script(tmp_path / "bad", "huge")
    assert result.returncode == 2 and "usage" in result.stderr and not calls


def test_the_committed_records_seed_the_sweep_without_replacing_its_runs(tmp_path):
    committed = tmp_path / "results" / "paper_cpu" / "runs" / "burgers-cpu"
    for run in ("adam-n2-it3000-seed0", "config-n2-it3000-seed0"):
        (committed / run).mkdir(parents=True)
        (committed / run / "summary.json").write_text('{"from": "results"}')
    running = tmp_path / "runs" / "paper_cpu" / "burgers-cpu" / "config-n2-it3000-seed0"
    running.mkdir(parents=True)
    (running / "summary.json").write_text('{"from": "sweep"}')
    result, calls = run_script(tmp_path, "cpu")
    assert result.returncode == 0, result.stderr
    sweep = tmp_path / "runs" / "paper_cpu" / "burgers-cpu"
    assert (sweep / "adam-n2-it3000-seed0" / "summary.json").read_text() == '{"from": "results"}'
    assert (running / "summary.json").read_text() == '{"from": "sweep"}'
    assert calls[0].startswith("run -m +experiment=paper_iterations_cpu")
