"""``pinnbench report`` end to end, in a subprocess."""

import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import TINY, run_cli


def report_cli(*args: str) -> subprocess.CompletedProcess:
    """``pinnbench report ARGS`` as the console script runs it (``main`` imported from
    pinnbench.cli, so that subcommand modules register with the same module)."""
    code = "import sys; from pinnbench.cli import main; main(sys.argv[1:])"
    return subprocess.run([sys.executable, "-c", code, "report", *args], capture_output=True, text=True, timeout=300)


def test_report_writes_tables_and_figures_and_prints_the_summary(study, tmp_path):
    out = tmp_path / "out"
    result = report_cli(str(study), "--out", str(out), "--resamples", "200", "--no-figures")
    assert result.returncode == 0, result.stderr
    for name in ("runs.csv", "summary.csv", "summary.md", "summary.tex", "ranks.csv", "time_to_target.csv",
                 "pairs.csv"):
        assert (out / name).is_file(), name
    assert not (out / "figures").exists()
    assert "13 runs: 11 completed and in the means, 1 diverged, 1 incomplete." in result.stdout
    assert "note:" in result.stdout and "no completed Adam run" in result.stdout
    md = (out / "summary.md").read_text()
    assert "## Runs not in the means" in md and "seed3" in md and "seed4" in md
    assert "diverged" in md and "incomplete" in md
    paper = md.split("## Improvement over Adam, as the paper reports it")[1].split("## Errors over seeds")[0]
    assert "### Equal iterations" in paper and "| adam: median E" in paper and "(3/3)" in paper
    assert "Equal iterations" not in md.split("## Improvement over Adam")[0]
    tex = (out / "summary.tex").read_text()
    assert tex.count("\\begin{tabular}") == 2 + paper.count("### ")  # the paper's tables, errors, against Adam
    runs = pd.read_csv(out / "runs.csv")
    assert sorted(runs["status"].unique()) == ["completed", "diverged", "incomplete"]


def test_a_bad_path_is_a_clear_error_without_traceback(tmp_path):
    result = report_cli(str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"))
    assert result.returncode != 0
    assert result.stderr.startswith("error:") and "nowhere" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_report_of_real_runs_with_figures(tmp_path):
    run = run_cli("run", "-m", "method=adam,config", "budget.iterations=20", "eval_every=10", *TINY,
                  f"hydra.sweep.dir={tmp_path / 'runs'}")
    assert run.returncode == 0, run.stderr
    out = tmp_path / "out"
    result = report_cli(str(tmp_path / "runs"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "2 runs: 2 completed and in the means." in result.stdout
    summary = pd.read_csv(out / "summary.csv").set_index("method")
    runs = pd.read_csv(out / "runs.csv").set_index("method")
    assert set(summary.index) == {"adam", "config"} and (summary["n_seeds"] == 1).all()
    assert summary.loc["config", "mean"] == runs.loc["config", "test_mse"] > 0
    adam, config = summary.loc["adam", "mean"], summary.loc["config", "mean"]
    assert summary.loc["config", "improvement_over_adam_percent"] == pytest.approx((adam - config) / adam * 100)
    assert runs.loc["config", "variant"] == ("problem.sizes.cpu.points.boundary=16;problem.sizes.cpu.points.initial=16;"
                                             "problem.sizes.cpu.points.residual=64")
    for name in ("improvement", "performance_profile", "time_to_target", "test_mse_burgers-cpu_n3_it20_",
                 "losses_burgers-cpu_n3_it20_"):
        assert list((out / "figures").glob(f"{name}*.pdf")), name


def test_another_baseline_takes_adams_place_in_every_comparison(study, tmp_path):
    from pinnbench.report import build_report

    default = build_report([study], tmp_path / "default", figures=False, n_resamples=50)
    report = build_report([study], tmp_path / "out", figures=False, n_resamples=50, baseline="config")
    rows = report.summary.query("problem == 'burgers' and budget == 'iterations'").set_index("method")
    adam, config = rows.loc["adam"], rows.loc["config"]
    assert config["improvement_over_adam_percent"] == 0.0 and pd.isna(config["median_log10_ratio"])
    assert adam["improvement_over_adam_percent"] == pytest.approx((0.02 - 0.04) / 0.02 * 100)
    # Adam is worse on every seed pair; config's diverged seed 3 has no Adam run, so 3 pairs
    assert adam["n_pairs"] == 3 and adam["p_improve"] == 0.0 and adam["median_log10_ratio"] < 0
    pair = default.pairs.query("problem == 'burgers' and budget == 'iterations' and method == 'adam' "
                               "and versus == 'config'").iloc[0]
    assert adam["median_log10_ratio"] == pytest.approx(pair["median_log10_ratio"])
    assert adam["wilcoxon_p"] == pytest.approx(pair["wilcoxon_p"], nan_ok=True)
    pd.testing.assert_frame_equal(report.pairs, default.pairs)  # every pair is the same whatever the baseline
    assert report.ranks.equals(default.ranks)
    targets = report.targets.query("problem == 'burgers' and budget == 'iterations'").set_index("method")
    assert targets.loc["config", "target"] == pytest.approx(0.02)  # config's median final error
    assert targets.loc["config", "speedup_vs_adam"] == 1.0
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "Baseline: `config` (`--baseline`)" in md and "## Against config" in md
    assert "## Improvement over config, as the paper reports it" in md and "| config: median E" in md
    assert "worse than config: adam" not in md  # 3 pairs: below the Wilcoxon minimum
    assert "not tested, fewer than 5 seed pairs with config: adam" in md
    assert "Baseline:" not in (tmp_path / "default" / "summary.md").read_text()
    # Kovasznay has config only, so with config as baseline nothing is missing there
    assert not any("kovasznay" in n and "no comparison" in n for n in report.notes)
    assert any("kovasznay" in n and "no comparison with Adam" in n for n in default.notes)


def test_metric_target_and_style_options(study, tmp_path):
    out = tmp_path / "out"
    result = report_cli(str(study), "--out", str(out), "--resamples", "50", "--metric", "mse_u",
                        "--target", "burgers=0.045", "--target", "kovasznay=1", "--improvement-style", "paper")
    assert result.returncode == 0, result.stderr
    assert "Error metric: mse_u." in result.stdout
    assert (pd.read_csv(out / "summary.csv")["metric"] == "mse_u").all()
    md = (out / "summary.md").read_text()
    assert "Error metric E: `mse_u`" in md and "given per problem (burgers=0.045, kovasznay=1)" in md
    assert (out / "figures" / "improvement.png").is_file()
    assert (out / "figures" / "mse_u_burgers-cpu_n3_it200.png").is_file()
    targets = pd.read_csv(out / "time_to_target.csv")
    assert set(targets.query("problem == 'burgers'")["target"]) == {0.045}


@pytest.mark.parametrize("args, message", [
    (("--metric", "rel_l2"), "--metric rel_l2: no completed run records it"),
    (("--metric", "seconds"), "--metric seconds: not an error metric"),
    (("--target", "heat=1e-3"), "--target heat: no run of that problem; problems: burgers, kovasznay."),
    (("--target", "burgers"), "--target burgers: expected PROBLEM=VALUE"),
    (("--baseline", "adam+lbfgs"), "--baseline adam+lbfgs: no run has this method; methods: adam, config, mconfig."),
])
def test_a_bad_metric_or_target_is_a_one_line_error(study, tmp_path, capsys, args, message):
    from pinnbench.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(study), "--out", str(tmp_path / "out"), "--no-figures", *args])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert exit_info.value.code == 2 and error.startswith(f"error: {message}")
    if "--metric" in args:
        assert error.endswith("available: test_mse, best_test_mse, mse_u.")


def test_a_report_of_nothing_is_a_one_line_usage_error(tmp_path, capsys):
    from pinnbench.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert exit_info.value.code == 2 and error.endswith("error: give RUNS_DIR, or --tuned TUNE_DIR, or both")
    assert not (tmp_path / "out").exists()
