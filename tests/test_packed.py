"""Packed study records (``pinnbench pack`` / ``expand``): what goes in comes out, parts only grow,
reports and plots read them as they read run directories, and a relaunched sweep skips them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from pinnbench import packed, records
from pinnbench.cli import main
from pinnbench.errors import ConfigError
from pinnbench.report import build_report
from pinnbench.report.collect import find_run_dirs, read_history
from pinnbench.report.committed import TABLES, differences
from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[1]
FAST = ("budget.iterations=6", "eval_every=3", "log_every=1", "diagnostics.conflict_every=2", *TINY)
SWEEP = ("-m", "method=adam,config", "seed=0,1", *FAST)


def pinnbench_run(*args: str, sweep_dir: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "pinnbench", "run", *args, f"hydra.sweep.dir={sweep_dir}"],
                          capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """Four tiny runs of a real sweep (Adam and ConFIG, two seeds), as Hydra and the trainer write them."""
    where = tmp_path_factory.mktemp("sweep") / "runs"
    done = pinnbench_run(*SWEEP, sweep_dir=where)
    assert done.returncode == 0, done.stdout + done.stderr
    return where


def run_names(root: Path) -> list[str]:
    return sorted(p.parent.relative_to(root).as_posix() for p in root.rglob(records.SUMMARY))


def file_bytes(root: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.glob("part-*"))}


def test_pack_then_expand_gives_back_every_record(sweep, tmp_path, capsys):
    main(["pack", str(sweep), str(tmp_path / "packed"), "--weights", "all"])
    assert "4 runs packed" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "packed").iterdir()) == [
        "part-0000-histories.parquet", "part-0000-summaries.parquet", "part-0000-weights.safetensors"]
    main(["expand", str(tmp_path / "packed"), str(tmp_path / "back")])
    assert "4 runs expanded" in capsys.readouterr().out
    runs = run_names(sweep)
    assert run_names(tmp_path / "back") == runs and len(runs) == 4
    for run in runs:
        source, back = sweep / run, tmp_path / "back" / run
        for name in (records.SUMMARY, ".hydra/config.yaml", ".hydra/overrides.yaml"):
            assert (back / name).read_bytes() == (source / name).read_bytes(), name
        pd.testing.assert_frame_equal(pd.read_csv(back / records.HISTORY), pd.read_csv(source / records.HISTORY),
                                      check_exact=True)
        kept = torch.load(back / records.MODEL, weights_only=True)
        trained = records.load_checkpoint(source / records.CHECKPOINT)["model"]
        assert kept.keys() == trained.keys() and all(torch.equal(kept[k], trained[k]) for k in trained)


def test_the_summaries_table_opens_in_pandas_with_every_field(sweep, tmp_path):
    packed.pack(sweep, tmp_path / "packed")
    table = pd.read_parquet(tmp_path / "packed" / "part-0000-summaries.parquet")
    assert sorted(table["run"]) == run_names(sweep)
    fields = packed.read_summaries(tmp_path / "packed").set_index("run")
    for run in run_names(sweep):
        summary = records.read_summary(sweep / run)
        assert fields.at[run, "test_mse"] == summary["test_mse"] and fields.at[run, "status"] == summary["status"]
        assert fields.at[run, "config.problem.name"] == "burgers"
    histories = pd.read_parquet(tmp_path / "packed" / "part-0000-histories.parquet")
    assert set(histories["run"]) == set(run_names(sweep)) and histories["loss_residual"].dtype == np.float32


def test_report_weights_are_those_of_the_best_run_per_problem(sweep, tmp_path):
    result = packed.pack(sweep, tmp_path / "packed")
    best = min(run_names(sweep), key=lambda r: records.read_summary(sweep / r)["test_mse"])
    assert result.weights == [best]
    assert packed.pack(sweep, tmp_path / "none", weights="none").weights == []
    assert packed.pack(sweep, tmp_path / "some", weights="none", keep_weights=["*/adam-*"]).weights == [
        r for r in run_names(sweep) if "/adam-" in r]


def test_reports_from_packed_records_equal_those_from_run_directories(sweep, tmp_path, monkeypatch):
    shutil.copytree(sweep, tmp_path / "dirs" / "study" / "runs")
    packed.pack(sweep, tmp_path / "packed" / "study" / "runs")
    made = {}
    for form in ("dirs", "packed"):
        monkeypatch.chdir(tmp_path / form)  # both name their runs study/runs/burgers-cpu/...
        build_report(["study/runs"], "report", figures=False)
        made[form] = {n: pd.read_csv(f"report/{n}") for n in TABLES if Path(f"report/{n}").is_file()}
    assert made["dirs"].keys() == made["packed"].keys() and "conflicts.csv" in made["dirs"]
    for name, table in made["dirs"].items():
        pd.testing.assert_frame_equal(made["packed"][name], table, check_exact=True, obj=name)
    # the check a committed study gets: the packed study's report against the tables made from directories
    for name in [*made["dirs"], "summary.md"]:
        shutil.copy(tmp_path / "dirs" / "report" / name, "study")
    assert differences("study") == []
    pd.DataFrame({"setting": ["x"]}).to_csv("study/ranks.csv", index=False)
    assert any("ranks.csv" in d for d in differences("study"))


def test_plot_draws_a_packed_run_with_weights_and_names_one_without(sweep, tmp_path, monkeypatch, capsys):
    result = packed.pack(sweep, tmp_path / "packed")
    monkeypatch.chdir(tmp_path)
    with_weights = tmp_path / "packed" / result.weights[0]
    main(["plot", str(with_weights)])
    assert (tmp_path / f"{with_weights.name}-fields.png").read_bytes().startswith(b"\x89PNG")
    assert not with_weights.exists()  # nothing written into the packed directory
    other = next(r for r in result.packed if r not in result.weights)
    with pytest.raises(SystemExit):
        main(["plot", str(tmp_path / "packed" / other)])
    assert "keep no weights" in capsys.readouterr().err


def test_a_new_part_is_added_without_touching_earlier_files(sweep, tmp_path, capsys):
    src, dest = tmp_path / "src", tmp_path / "packed"
    first, second = run_names(sweep)[:2], run_names(sweep)[2:]
    for run in first:
        shutil.copytree(sweep / run, src / run)
    assert packed.pack(src, dest).part == 0
    before = file_bytes(dest)
    for run in second:
        shutil.copytree(sweep / run, src / run)
    main(["pack", str(src), str(dest)])
    assert "2 runs packed" in (out := capsys.readouterr().out) and "part 0001" in out and "2 already packed" in out
    assert {k: v for k, v in file_bytes(dest).items() if k.startswith("part-0000")} == before
    assert sorted(packed.open_packed(dest).runs()) == run_names(sweep)
    assert sorted(d.relative_to(dest).as_posix() for d in find_run_dirs([dest])) == run_names(sweep)
    result = packed.pack(src, dest)
    assert result.part is None and len(result.unchanged) == 4 and len(list(dest.iterdir())) == 6  # 3 files a part
    # a packed run that changed since is refused, not packed twice
    summary = records.read_summary(src / second[0])
    records.write_json(src / second[0] / records.SUMMARY, {**summary, "note": "changed"})
    with pytest.raises(ConfigError, match="already packed in .*part-0001-summaries.parquet"):
        packed.pack(src, dest)
    # but a run packed as failed and tried again is packed again, and its new record replaces the old
    records.write_json(src / second[0] / records.SUMMARY, summary)
    failed = src / first[0] / records.SUMMARY
    records.write_json(failed, {**records.read_summary(src / first[0]), "status": "failed"})
    retried = tmp_path / "retried"
    packed.pack(src, retried, match=[first[0]])
    records.write_json(failed, records.read_summary(sweep / first[0]))
    assert packed.pack(src, retried).packed == run_names(sweep)
    assert packed.read_summary(retried / first[0]) == records.read_summary(sweep / first[0])
    assert len(packed.open_packed(retried).runs()) == 4


def test_a_run_found_twice_is_an_error(sweep, tmp_path):
    dest = tmp_path / "packed"
    packed.pack(sweep, dest, match=["*seed0*"])
    shutil.copy(dest / "part-0000-summaries.parquet", dest / "part-0001-summaries.parquet")
    with pytest.raises(ConfigError, match="packed more than once .*part-0000.*part-0001"):
        find_run_dirs([dest])
    (dest / "part-0001-summaries.parquet").unlink()
    run = run_names(sweep)[0]
    shutil.copytree(sweep / run, dest / run)  # the same run as a directory beside its packed records
    with pytest.raises(ConfigError, match="both packed .* and a run directory"):
        find_run_dirs([dest])


def test_thinning_keeps_every_evaluated_and_diagnosed_row_and_at_most_n_others():
    n = 1000
    history = pd.DataFrame({"iteration": np.arange(n) * 10, "seconds": np.arange(n) * 0.1,
                            "lr": np.full(n, 1e-3), "loss_residual": np.linspace(1, 0, n),
                            "test_mse": np.where(np.arange(n) % 100 == 0, 0.5, np.nan),
                            "cos_update_residual": np.where(np.arange(n) % 50 == 7, 0.1, np.nan),
                            "phase": ["main"] * 900 + ["finish"] * 100})
    kept = packed.thin_rows(history, 30)
    marked = history["test_mse"].notna() | history["cos_update_residual"].notna()
    assert set(history.loc[marked, "iteration"]) <= set(kept["iteration"])
    assert {0, 9000, 9990} <= set(kept["iteration"])  # first, last, where the phase changes
    curve_only = kept[kept["test_mse"].isna() & kept["cos_update_residual"].isna()]
    assert len(curve_only) <= 30 + 2 and len(kept) == len(set(kept["iteration"]))
    assert packed.thin_rows(history, None) is history
    assert len(packed.thin_rows(history, 0)) == marked.sum() + 1  # the last row; the first and the phase change are marked


@pytest.mark.parametrize("seed", range(5))
def test_thinning_evaluations_keeps_every_time_to_target_and_final_value(seed):
    from pinnbench.report.stats import time_to_target

    rng = np.random.default_rng(seed)
    n = 400
    noisy = np.exp(-np.linspace(0, 5, n) + rng.normal(0, 0.7, n))  # a noisy error that falls over training
    history = pd.DataFrame({"iteration": np.arange(n), "seconds": np.cumsum(rng.uniform(0.1, 0.2, n)),
                            "loss_residual": rng.uniform(size=n), "weight_residual": np.r_[np.ones(n - 50), np.full(50, 2.0)],
                            "test_mse": np.where(np.arange(n) % 4 == 0, noisy, np.nan),
                            "mse_u": np.where(np.arange(n) % 4 == 0, noisy[::-1], np.nan)})
    kept = packed.thin_rows(history, 5, keep_evaluated=3)
    assert len(kept) < history["test_mse"].notna().sum()
    for metric in ("test_mse", "mse_u"):
        for target in [*np.quantile(noisy, np.linspace(0, 1, 41)), 0.0, np.inf]:
            np.testing.assert_equal(time_to_target(kept, metric, target), time_to_target(history, metric, target))
    for column in history.columns:  # every column's last value, as the runs table and loss weights read it
        assert kept[column].dropna().iloc[-1] == history[column].dropna().iloc[-1]
    assert (kept["weight_residual"] != 1).any()


def test_thinned_packing_changes_only_the_rows_and_the_learning_rate(sweep, tmp_path):
    packed.pack(sweep, tmp_path / "packed", thin=1)
    for run in run_names(sweep):
        full = read_history(sweep / run)
        kept = read_history(tmp_path / "packed" / run)
        assert len(kept) < len(full)
        rows = full.set_index("iteration").loc[kept["iteration"]].reset_index()
        pd.testing.assert_frame_equal(kept.drop(columns="lr"), rows.drop(columns="lr"), check_exact=True)
        np.testing.assert_allclose(kept["lr"], rows["lr"], rtol=1e-7)
        summary = packed.read_summaries(tmp_path / "packed").set_index("run")
        assert packed.open_packed(tmp_path / "packed").summaries.at[run, "history_rows"] == len(full)
        assert summary.at[run, "status"] == "completed"


def test_a_relaunched_sweep_over_expanded_records_skips_every_run(sweep, tmp_path):
    packed.pack(sweep, tmp_path / "packed")
    packed.expand(tmp_path / "packed", tmp_path / "again")
    relaunch = pinnbench_run(*SWEEP, sweep_dir=tmp_path / "again")
    assert relaunch.returncode == 0, relaunch.stdout + relaunch.stderr
    assert "0 completed, 0 diverged, 0 failed, 4 skipped (4 already completed)" in relaunch.stdout
    assert relaunch.stdout.count("nothing to do") == 4


def test_pack_and_expand_refuse_bad_input(sweep, tmp_path, capsys):
    for argv in (["pack", str(sweep), str(tmp_path / "p"), "--thin", "-1"],
                 ["pack", str(sweep), str(tmp_path / "p"), "--weights", "some"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
    with pytest.raises(ConfigError, match="not a directory of runs"):
        packed.pack(tmp_path / "nowhere", tmp_path / "p")
    with pytest.raises(ConfigError, match="inside it"):
        packed.pack(sweep, sweep / "packed")
    with pytest.raises(ConfigError, match="holds no packed records"):
        packed.expand(sweep, tmp_path / "x")
    shutil.copytree(sweep, tmp_path / "copy")
    with pytest.raises(ConfigError, match="is a run directory"):
        packed.pack(sweep, tmp_path / "copy")


def test_the_conversion_script_packs_a_study_in_place_when_its_tables_regenerate(sweep, tmp_path):
    study = tmp_path / "results" / "study"
    shutil.copytree(sweep, study / "runs")
    build_report([study / "runs"], study, figures=False)
    (study / "figures").mkdir()
    (study / "figures" / "curve.png").write_bytes(b"png")
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    done = subprocess.run(["bash", str(ROOT / "scripts" / "pack_study.sh"), str(study), "--thin", "2"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "every table regenerates unchanged" in done.stdout
    assert sorted(p.name for p in (study / "runs").iterdir()) == [
        "part-0000-histories.parquet", "part-0000-summaries.parquet", "part-0000-weights.safetensors"]
    assert not (study / "figures").exists() and not (study / "runs.old").exists()
    again = subprocess.run(["bash", str(ROOT / "scripts" / "pack_study.sh"), str(study)],
                           capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert again.returncode == 0 and "already packed" in again.stdout


def test_a_run_without_history_or_weights_round_trips(tmp_path):
    run = tmp_path / "src" / "burgers-cpu" / "adam-n2-it3000-seed0"
    records.write_json(run / records.SUMMARY, {"status": "failed", "error": "RuntimeError: out of memory"})
    (run / ".hydra").mkdir()
    (run / ".hydra" / "config.yaml").write_text("seed: 0\n")
    result = packed.pack(tmp_path / "src", tmp_path / "packed")
    assert result.packed == ["burgers-cpu/adam-n2-it3000-seed0"] and result.weights == []
    assert sorted(p.name for p in (tmp_path / "packed").iterdir()) == ["part-0000-summaries.parquet"]
    packed.expand(tmp_path / "packed", tmp_path / "back")
    back = tmp_path / "back" / "burgers-cpu" / "adam-n2-it3000-seed0"
    assert sorted(p.relative_to(back).as_posix() for p in back.rglob("*") if p.is_file()) == [
        ".hydra/config.yaml", records.SUMMARY]
    assert (back / records.SUMMARY).read_bytes() == (run / records.SUMMARY).read_bytes()
    assert read_history(tmp_path / "packed" / "burgers-cpu" / "adam-n2-it3000-seed0") is None
