"""Provenance in the run records: when, with which code, on which machine."""

import json
import subprocess
from datetime import datetime, timezone

import pytest
import torch

from pinnbench import provenance as prov
from pinnbench.report.collect import collect_runs
from pinnbench.train import prepare, train
from tests.conftest import TINY, compose_config


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_the_commit_of_a_checkout_is_read_and_marked_dirty_when_tracked_files_changed(tmp_path):
    git(tmp_path, "init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    git(tmp_path, "add", "a.py")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert prov.code_commit.__wrapped__(tmp_path) == head and len(head) == 40
    (tmp_path / "untracked.txt").write_text("not code\n")
    assert prov.code_commit.__wrapped__(tmp_path) == head  # untracked files (runs, results) do not count
    (tmp_path / "a.py").write_text("x = 2\n")
    assert prov.code_commit.__wrapped__(tmp_path) == head + "-dirty"


def test_outside_a_checkout_there_is_no_commit(tmp_path):
    assert prov.code_commit.__wrapped__(tmp_path / "nowhere") is None


def test_the_provenance_names_time_code_and_machine():
    record = prov.provenance(torch.device("cpu"))
    written = datetime.fromisoformat(record["written_at"])
    assert written.tzinfo is not None and abs((datetime.now(timezone.utc) - written).total_seconds()) < 60
    assert record["torch"] == torch.__version__ and record["cpus"] >= 1 and record["threads"] >= 1
    assert record["gpu"] is None and record["cpu"]
    json.dumps(record)  # it goes into summary.json as it is


def test_a_run_summary_carries_its_provenance_and_the_runs_table_its_commit(tmp_path):
    summary = train(prepare(compose_config(*TINY, "method=adam", "budget.iterations=4")), tmp_path / "run")
    assert summary["provenance"]["commit"] == prov.code_commit()
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["provenance"] == summary["provenance"]
    row = collect_runs([tmp_path]).iloc[0]
    assert row["written_at"] == summary["provenance"]["written_at"]
    if summary["provenance"]["commit"] is None:
        pytest.skip("not run from a git checkout: no commit to read back")  # e.g. an installed wheel
    assert row["commit"] == summary["provenance"]["commit"]
