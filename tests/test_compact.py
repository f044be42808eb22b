"""``pinnbench compact``: the records a study commits, and what can be done from them alone."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch

from pinnbench import records
from pinnbench.cli import main
from pinnbench.compact import compact, git_ignore_rule
from pinnbench.errors import ConfigError
from pinnbench.fieldplot import FIELDS_FILE, load_run
from tests.problems.test_fieldplot import PNG, tiny_run

ROOT = Path(__file__).resolve().parents[1]


def test_compact_keeps_summary_history_config_and_weights_of_finished_runs(tmp_path, capsys):
    src = tmp_path / "runs"
    summary = tiny_run("burgers", src / "burgers-cpu" / "adam-n2-it3-seed0", "plot=false")
    (src / "burgers-cpu" / "config-n2-it3-seed0").mkdir()  # not finished: left out
    main(["compact", str(src), str(tmp_path / "kept")])
    assert "1 runs compacted" in capsys.readouterr().out
    kept = tmp_path / "kept" / "burgers-cpu" / "adam-n2-it3-seed0"
    assert sorted(str(p.relative_to(kept)) for p in kept.rglob("*")) == [
        ".hydra", ".hydra/config.yaml", "history.csv", "model.pt", "summary.json"]
    assert records.read_summary(kept) == summary
    # the network of the compact records is the trained one: its test error and its fields
    problem, model = load_run(kept)
    assert problem.error(model)["test_mse"] == pytest.approx(summary["test_mse"], rel=1e-5)
    main(["plot", str(kept)])
    assert (kept / FIELDS_FILE).read_bytes().startswith(PNG)
    assert (kept / records.MODEL).stat().st_size < (src / "burgers-cpu" / "adam-n2-it3-seed0" /
                                                     records.CHECKPOINT).stat().st_size


def test_compact_again_leaves_unchanged_records_alone_and_rewrites_changed_ones(tmp_path, capsys):
    src, dest = tmp_path / "runs", tmp_path / "kept"
    run = Path("burgers-cpu") / "adam-n2-it3-seed0"
    tiny_run("burgers", src / run, "plot=false")
    assert compact(src, dest) == [run]
    before = {p: p.read_bytes() for p in (dest / run).rglob("*") if p.is_file()}
    main(["compact", str(src), str(dest)])
    assert "0 runs compacted" in (out := capsys.readouterr().out) and "1 already there unchanged" in out
    assert {p: p.read_bytes() for p in (dest / run).rglob("*") if p.is_file()} == before  # model.pt bytes too
    # a changed summary, or changed weights, are written again
    (dest / run / records.SUMMARY).write_text("{}")
    assert compact(src, dest) == [run] and records.read_summary(dest / run) == records.read_summary(src / run)
    state = records.load_checkpoint(src / run / records.CHECKPOINT)
    first = next(iter(state["model"]))
    state["model"][first] = state["model"][first] + 1.0
    records.save_checkpoint(src / run / records.CHECKPOINT, state)
    assert compact(src, dest) == [run]
    assert torch.equal(torch.load(dest / run / records.MODEL)[first], state["model"][first])
    (dest / run / records.MODEL).write_bytes(b"truncated")  # unreadable: written again
    assert compact(src, dest) == [run] and compact(src, dest) == []


def test_compact_refuses_a_missing_source_or_a_destination_inside_it(tmp_path):
    with pytest.raises(ConfigError, match="not a directory"):
        compact(tmp_path / "nowhere", tmp_path / "kept")
    (tmp_path / "runs").mkdir()
    with pytest.raises(ConfigError, match="inside it"):
        compact(tmp_path / "runs", tmp_path / "runs" / "kept")


def test_compact_refuses_a_destination_of_packed_records(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "packed").mkdir()
    (tmp_path / "packed" / "part-0000-summaries.parquet").write_bytes(b"")
    with pytest.raises(ConfigError, match="holds packed records: add runs to it with `pinnbench pack"):
        compact(tmp_path / "runs", tmp_path / "packed")


def test_compact_takes_only_the_runs_a_pattern_names(tmp_path):
    src = tmp_path / "runs"
    for name in ("adam-n2-it3000-seed0", "dcgd-n2-it3000-seed0", "adam+soap-n2-walladam-seed0"):
        (src / "burgers-cpu" / name).mkdir(parents=True)
        records.write_json(src / "burgers-cpu" / name / records.SUMMARY, {"status": "completed"})
    copied = compact(src, tmp_path / "kept", ["burgers-cpu/adam-*", "kovasznay-cpu/*"])
    assert [p.as_posix() for p in copied] == ["burgers-cpu/adam-n2-it3000-seed0"]
    assert sorted(p.name for p in (tmp_path / "kept" / "burgers-cpu").iterdir()) == ["adam-n2-it3000-seed0"]


@pytest.mark.parametrize("rule, ignored", [("runs/\n", True), ("/runs/\n", False)])
def test_compact_warns_when_git_would_not_commit_the_records(tmp_path, capsys, rule, ignored):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text(rule)
    tiny_run("burgers", tmp_path / "runs" / "burgers-cpu" / "adam-n2-it3-seed0", "plot=false")
    dest = tmp_path / "results" / "study" / "runs"
    main(["compact", str(tmp_path / "runs"), str(dest)])
    warning = capsys.readouterr().err
    assert (dest / "burgers-cpu" / "adam-n2-it3-seed0" / records.SUMMARY).is_file()
    assert (f"{dest} is ignored by git (.gitignore:1:runs/)" in warning) is ignored
    assert git_ignore_rule(dest) == (".gitignore:1:runs/" if ignored else None)
    assert git_ignore_rule(tmp_path.parent) is None  # outside the work tree


def test_the_repository_commits_the_records_of_its_studies():
    assert git_ignore_rule(ROOT / "results" / "any_study" / "runs") is None
