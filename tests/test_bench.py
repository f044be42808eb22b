"""The fast training path equals the straightforward one, lazy sampling, and ``pinnbench bench``.

No timing is asserted here: the speed targets live in the benchmark's output only.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from pinnbench import bench, records
from pinnbench.allocator import keep_freed_memory
from pinnbench.cli import config_dir
from pinnbench.errors import ConfigError
from pinnbench.train import prepare, train
from problems.base import LazyBatches
from tests.conftest import TINY, compose_config, run_cli, tiny_problem

METHODS = sorted(p.stem for p in (config_dir() / "method").glob("*.yaml"))
FULL_POINTS = {"residual": 48, "boundary": 12, "initial": 12}
TINY_PAPER = ("problem.sizes.paper.points.residual=48", "problem.sizes.paper.points.boundary=12",
              "problem.sizes.paper.points.initial=12", "problem.sizes.paper.width=12")
RECORD_KEYS = {"problem", "method", "implementation", "n_losses", "ms_per_iter", "peak_memory_mb", "gflop_per_iter",
               "matmul_share", "matmul_ms_per_iter", "matmul_ceiling", "machine_matmul_gflops", "vs_straightforward", "vs_our_adam", "paper_run_minutes"}


def final_parameters(run_dir: Path) -> dict[str, torch.Tensor]:
    return records.load_checkpoint(run_dir / records.CHECKPOINT)["model"]


def assert_both_paths_train_alike(tmp_path: Path, *overrides: str) -> None:
    """The run of ``overrides`` ends with the same parameters on the fast and straightforward paths."""
    common = (*overrides, "dtype=float64", "compile=false", "quiet=true", "plot=false")
    fast = train(prepare(compose_config(*common, "fast=true")), tmp_path / "fast")
    slow = train(prepare(compose_config(*common, "fast=false")), tmp_path / "slow")
    assert fast["status"] == slow["status"] == "completed"
    a, b = final_parameters(tmp_path / "fast"), final_parameters(tmp_path / "slow")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-9, atol=1e-11, msg=key)


@pytest.mark.parametrize("method", METHODS)
def test_fast_training_steps_give_the_parameters_of_the_straightforward_path(tmp_path, method):
    pytest.importorskip("torchjd") if method == "torchjd" else None
    assert_both_paths_train_alike(tmp_path, *TINY, f"method={method}", "budget.iterations=6", "eval_every=6")


PROBLEMS = sorted(p.stem for p in (config_dir() / "problem").glob("*.yaml"))


@pytest.mark.parametrize("method", ["config", "mconfig"])
@pytest.mark.parametrize("problem", PROBLEMS)
def test_every_problem_trains_to_the_same_parameters_on_both_paths(tmp_path, problem, method):
    assert_both_paths_train_alike(tmp_path, f"problem={problem}", *tiny_problem(problem), f"method={method}",
                                  "budget.iterations=4", "eval_every=4")


def test_lazy_points_depend_on_seed_iteration_and_term_only():
    problem = prepare(compose_config(*TINY)).problem
    generator = torch.Generator()
    forward = LazyBatches(problem, generator, 0, 7)
    backward = LazyBatches(problem, generator, 0, 7)
    for term in problem.terms:
        forward[term]
    for term in reversed(problem.terms):
        backward[term]
    for term in problem.terms:
        torch.testing.assert_close(forward[term].inputs, backward[term].inputs)
    assert not torch.equal(LazyBatches(problem, generator, 0, 8)["residual"].inputs, forward["residual"].inputs)
    assert not torch.equal(LazyBatches(problem, generator, 1, 7)["residual"].inputs, forward["residual"].inputs)


def test_mconfig_draws_and_evaluates_only_the_loss_it_refreshes(tmp_path, monkeypatch):
    if "mconfig" not in METHODS:
        pytest.skip("no configs/method/mconfig.yaml")
    setup = prepare(compose_config(*TINY, "method=mconfig", "budget.iterations=6", "eval_every=6"))
    drawn, phase = {"training": [], "scoring": []}, ["training"]
    original, label_free = setup.problem.sample_term, setup.problem.label_free
    monkeypatch.setattr(setup.problem, "sample_term", lambda term, *a: drawn[phase[0]].append(term) or original(term, *a))
    # after training, the label-free objective (train.final_scores) draws one fresh batch of every term
    monkeypatch.setattr(setup.problem, "label_free", lambda *a: phase.__setitem__(0, "scoring") or label_free(*a))
    train(setup, tmp_path)
    assert drawn["training"] == ["boundary", "initial", "residual"] * 2  # the paper's order starts at loss 1
    assert sorted(drawn["scoring"]) == sorted(setup.problem.terms)


def test_the_straightforward_step_is_the_same_step_as_ours():
    for method in [m for m in ("adam", "config", "mconfig") if m in METHODS]:
        cfg = compose_config(*TINY, f"method={method}", "dtype=float64", "compile=false")
        ours = bench.Variant(prepare(cfg), bench.OURS)
        cfg.fast = False
        plain = bench.Variant(prepare(cfg), bench.STRAIGHTFORWARD)
        for _ in range(4):  # the straightforward variant gets the points ours draws
            points = LazyBatches(ours.setup.problem, torch.Generator(), 0, ours.iteration)
            plain.setup.problem.sample = lambda generator, points=points: {t: points[t] for t in points.problem.terms}
            ours.step()
            plain.step()
        for a, b in zip(ours.params, plain.params):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11, msg=method)


def test_bench_writes_its_records_and_prints_the_ratio_table(tmp_path):
    methods = [m for m in ("adam", "config", "mconfig") if m in METHODS]
    out = tmp_path / "bench.json"
    result = run_cli("bench", *TINY_PAPER, "compile=false", f"bench.methods=[{','.join(methods)}]",
                     "bench.optimizers=[]", "bench.iterations=1", "bench.rounds=2", "bench.warmup=1",
                     f"bench.out={out}")
    assert result.returncode == 0, result.stderr
    rows = json.loads(out.read_text())
    assert {(r["method"], r["implementation"]) for r in rows} == {(m, i) for m in methods
                                                                  for i in (bench.OURS, bench.STRAIGHTFORWARD)}
    for row in rows:
        assert RECORD_KEYS <= set(row), RECORD_KEYS - set(row)
        assert row["problem"] == "burgers" and row["size"] == "paper" and row["points"]["residual"] == 48
        assert row["ms_per_iter"] > 0 and row["gflop_per_iter"] > 0 and row["vs_our_adam"] > 0
        assert row["iterations_per_round"] % row["n_losses"] == 0
        # arithmetic on the record's own numbers only: two timings taken in different cycles are never compared
        assert row["matmul_ms_per_iter"] > 0 and row["machine_matmul_gflops"] > 0
        assert row["matmul_share"] == pytest.approx(row["gflop_per_iter"] / (row["ms_per_iter"] / 1e3)
                                                    / row["machine_matmul_gflops"], rel=1e-12)
        assert row["matmul_ceiling"] == pytest.approx(row["gflop_per_iter"] / (row["matmul_ms_per_iter"] / 1e3)
                                                      / row["machine_matmul_gflops"], rel=1e-12)
    assert "× straightforward" in result.stdout and "records in" in result.stdout
    for method in methods:
        assert f"| {method}" in result.stdout


def test_bench_times_the_optimisers_beside_adam(tmp_path):
    pytest.importorskip("pytorch_optimizer")
    out = tmp_path / "bench.json"
    result = run_cli("bench", *TINY_PAPER, "compile=false", "bench.methods=[adam]", "bench.optimizers=[soap,muon]",
                     "bench.iterations=1", "bench.rounds=1", "bench.warmup=1", "bench.baseline=false",
                     "bench.memory=false", f"bench.out={out}")
    assert result.returncode == 0, result.stderr
    rows = {r["method"]: r for r in json.loads(out.read_text())}
    assert set(rows) == {"adam", "adam+soap", "adam+muon"}
    assert rows["adam+soap"]["optimizer"] == "soap" and rows["adam"]["optimizer"] == "adam"
    assert all(r["implementation"] == bench.OURS and r["vs_our_adam"] > 0 for r in rows.values())
    assert "| adam+soap" in result.stdout and "| adam+muon" in result.stdout


@pytest.mark.parametrize("overrides, words", [
    (["bench.iteratons=3"], "bench.iterations"),
    (["method=adam"], "bench.methods"),
    (["optimizer=soap"], "bench.optimizers"),
    (["bench.rounds=0"], "positive"),
    (["dtyp=float64"], "not a setting"),
    (["bench.methods=[adam,nosuch]"], "nosuch"),
    (["bench.logger=nosuch"], "logger=nosuch is not one of configs/logger/; allowed: mlflow, none"),
    (["logger=mlflow"], "bench.logger"),
])
def test_bad_bench_settings_fail_before_anything_runs(overrides, words):
    with pytest.raises(ConfigError, match=words):
        bench.compose(overrides)


def test_bench_measures_a_trackers_cost_on_rows_shaped_as_the_trainers(tmp_path):
    pytest.importorskip("tensorboard")
    options, configs = bench.compose([*TINY_PAPER, "compile=false", "bench.methods=[config]", "bench.optimizers=[]",
                                      "bench.logger=tensorboard", "bench.iterations=1", "bench.rounds=1",
                                      "bench.warmup=1", "bench.baseline=false", "bench.memory=false",
                                      "checkpoint_every=100", "log_every=10", "eval_every=50"])
    (row,) = bench.run_bench(options, configs["burgers"], say=lambda _: None)
    assert row["logger"] == "tensorboard" and row["logger_rows_per_send"] == 10 and row["logger_ms_per_iter"] > 0
    assert row["logger_percent_of_step"] == pytest.approx(100 * row["logger_ms_per_iter"] / row["ms_per_iter"])
    variant = bench.Variant(prepare(configs["burgers"]["config"]), bench.OURS)
    variant.step()
    errors = variant.setup.problem.error(variant.model)
    timed = bench.history_rows(variant, 0, 11, errors)
    assert [r["iteration"] for r in timed] == list(range(0, 101, 10))
    assert [r["iteration"] for r in timed if "test_mse" in r] == [0, 50, 100]
    run = train(prepare(compose_config(*TINY, "method=config", "budget.iterations=10", "eval_every=10")), tmp_path)
    assert run["status"] == "completed"
    trained = pd.read_csv(tmp_path / records.HISTORY)
    assert set().union(*timed) == set(trained.columns)  # the columns a trained run records


def test_bench_composes_the_run_configuration_of_every_method_at_paper_size():
    options, configs = bench.compose(["problem=kovasznay", "n_losses=2", "bench.methods=[adam,config]"])
    assert list(configs) == ["kovasznay"]
    configs = configs["kovasznay"]
    assert list(configs) == ["adam", "config", "adam+soap", "adam+muon", "adam+psgd"] and options.size == "paper"
    assert configs["adam+muon"].optimizer.name == "muon" and configs["adam+muon"].method.name == "adam"
    setup = prepare(configs["config"])
    assert setup.problem.name == "kovasznay" and setup.problem.options.size == "paper"
    assert setup.method_options.name == "config" and setup.problem.fast == "compiled"  # a 100 000-iteration size


def test_matmul_work_counts_every_product_and_its_time():
    a, b, batch = torch.randn(30, 7), torch.randn(7, 5), torch.randn(4, 3, 6)

    def step():
        a @ b  # mm: 2·30·7·5
        torch.addmm(b[0], a, b)  # addmm: the same product
        torch.bmm(batch, batch.transpose(1, 2))  # bmm: 2·4·3·6·3
        a + 1.0  # no matmul

    flops, seconds = bench.matmul_work(step, 3, torch.device("cpu"))
    assert flops == 2 * (2 * 30 * 7 * 5) + 2 * 4 * 3 * 6 * 3
    assert seconds is not None and seconds > 0


def test_keeping_freed_memory_is_idempotent():
    assert keep_freed_memory() == keep_freed_memory()


def test_bench_times_several_problems_into_one_table(tmp_path):
    options, configs = bench.compose(["bench.problems=[burgers,kovasznay]", "bench.methods=[adam]", "bench.optimizers=[]"])
    assert list(configs) == ["burgers", "kovasznay"] and options.problems == ["burgers", "kovasznay"]
    assert configs["kovasznay"]["adam"].problem.name == "kovasznay" and configs["kovasznay"]["adam"].n_losses == 2
    assert configs["burgers"]["adam"].problem.name == "burgers"
    records = [{"problem": p, "method": m, "implementation": i, "ms_per_iter": ms, "paper_iterations": None,
                "n_losses": 2, "gflop_per_iter": 1.0, "matmul_share": 0.2, "peak_memory_mb": None}
               for p, m, i, ms in [("burgers", "adam", bench.OURS, 10.0), ("burgers", "adam", bench.STRAIGHTFORWARD, 20.0),
                                   ("kovasznay", "adam", bench.OURS, 30.0),
                                   ("kovasznay", "adam", bench.STRAIGHTFORWARD, 40.0)]]
    bench._add_ratios(records)
    assert [r["vs_straightforward"] for r in records if r["implementation"] == bench.OURS] == [0.5, 0.75]
    text = bench.table(records)
    assert "| burgers" in text and "| kovasznay" in text and "0.75×" in text


def test_bench_refuses_a_problem_given_twice():
    with pytest.raises(ConfigError, match="not both"):
        bench.compose(["problem=burgers", "bench.problems=[kovasznay]"])


@pytest.mark.parametrize("estimated, cap, fraction", [
    (None, 4096, 1.0), (100.0, 4096, 1.0), (4096.0, 4096, 1.0), (5000.0, 4096, 0.5), (18000.0, 4096, 0.125),
    (18000.0, 0, 1.0), (1e9, 1.0, 1 / 1024),
])
def test_the_points_fraction_keeps_the_estimated_peak_under_the_cap(estimated, cap, fraction):
    assert bench.points_fraction(estimated, cap) == fraction


@pytest.mark.parametrize("at_points, at_fewer, points, fewer, full, expected", [
    (30.0, 20.0, 2500, 1250, 10000, 90.0),  # 10 fixed + 0.008 per point
    (16.0, 8.0, 500, 250, 1000, 32.0),  # no fixed part: proportional
    (20.0, 20.0, 2500, 1250, 10000, None), (19.0, 20.0, 2500, 1250, 10000, None),  # noise beyond the difference
    (None, 5.0, 2500, 1250, 10000, None), (30.0, 20.0, 10, 10, 100, None),
])
def test_a_reading_is_extrapolated_on_the_line_through_two_point_counts(at_points, at_fewer, points, fewer, full,
                                                                         expected):
    found = bench.extrapolate(at_points, at_fewer, points, fewer, full)
    assert found == (pytest.approx(expected) if expected else None)


def test_a_record_at_a_fraction_of_the_points_is_scaled_to_all_of_them():
    def made_up(ms: float, memory: float, matmul_ms: float, residual: int) -> dict:
        return {"ms_per_iter": ms, "ms_per_iter_q1": ms, "ms_per_iter_q3": ms, "ms_per_iter_min": ms,
                "cpu_ms_per_iter": ms, "gflop_per_iter": 0.5, "matmul_ms_per_iter": matmul_ms,
                "peak_memory_mb": memory, "machine_matmul_gflops": 100.0,
                "points": {"residual": residual, "boundary": residual // 10}}

    full = {"residual": 10000, "boundary": 1000}
    record, fewer = made_up(30.0, 1000.0, 8.0, 2500), made_up(20.0, 600.0, 4.0, 1250)
    scaled = bench.scale_record(record, fewer, full, 16000.0)
    assert scaled["ms_per_iter"] == pytest.approx(90.0) and scaled["peak_memory_mb"] == pytest.approx(3400.0)
    assert scaled["matmul_ms_per_iter"] == pytest.approx(32.0) and scaled["gflop_per_iter"] == pytest.approx(2.0)
    assert scaled["matmul_share"] == pytest.approx(2.0 / 0.090 / 100.0)
    assert scaled["matmul_ceiling"] == pytest.approx(2.0 / 0.032 / 100.0)
    assert scaled["points"] == full and scaled["points_fraction"] == 0.25
    assert record["ms_per_iter"] == 30.0  # the measured record is left as it was
    flat = bench.scale_record(record, made_up(30.0, 1000.0, 8.0, 1250), full, 16000.0)
    assert flat["ms_per_iter"] is None and flat["matmul_share"] is None  # no growth seen: no value invented
    rows = [{**made_up(30.0, 1000.0, 8.0, 10000), "problem": "p", "method": "m", "n_losses": 3, "matmul_share": 0.1,
             "implementation": bench.OURS, "paper_iterations": None},
            {**flat, "problem": "p", "method": "m", "implementation": bench.STRAIGHTFORWARD, "paper_iterations": 10}]
    bench._add_ratios(rows)
    assert rows[0]["vs_straightforward"] is None and "| ≈–" not in bench.table(rows)


def test_scaling_the_points_keeps_at_least_one_per_term():
    cfg = compose_config("problem.size=paper")
    full = dict(cfg.problem.sizes.paper.points)
    bench.scale_points(cfg, 1 / 16)
    assert dict(cfg.problem.sizes.paper.points) == {t: max(1, round(n / 16)) for t, n in full.items()}


def test_a_straightforward_step_over_the_memory_cap_is_timed_at_a_fraction_and_marked(tmp_path, monkeypatch):
    readings = []

    def made_up_peak(step, iterations, device):  # made-up readings: 1 MB per point (1 000 MB at 1/16 of them)
        readings.append(iterations)
        points = step.__self__.setup.problem.points  # the made-up memory: ∝ the points
        return 1000.0 * sum(points.values()) / sum(max(1, round(n / 16)) for n in FULL_POINTS.values())

    monkeypatch.setattr(bench, "peak_memory_mb", made_up_peak)
    out = tmp_path / "bench.json"
    lines = []
    records = bench.bench([*TINY_PAPER, "compile=false", "bench.methods=[adam]", "bench.optimizers=[]",
                           "bench.iterations=1", "bench.rounds=1", "bench.warmup=1", "bench.memory_cap_mb=4096",
                           f"bench.out={out}"], say=lines.append)
    plain = next(r for r in records if r["implementation"] == bench.STRAIGHTFORWARD)
    ours = next(r for r in records if r["implementation"] == bench.OURS)
    assert plain["points_fraction"] == 0.25 and plain["estimated_peak_memory_mb"] == pytest.approx(16000.0)
    assert plain["points"] == FULL_POINTS and plain["measured_points"] == {"residual": 12, "boundary": 3, "initial": 3}
    assert plain["peak_memory_mb"] == pytest.approx(200.0 * 72)  # 200 MB per point, on the line through two counts
    assert "points_fraction" not in ours and len(records) == 2  # the twin at 1/8 is folded into the record
    text = "\n".join(lines)
    assert "≈14400" in text and "timed at 0.25 of the points" in text and "(18 of 72)" in text


def test_bad_memory_cap_is_refused():
    with pytest.raises(ConfigError, match="memory_cap_mb"):
        bench.compose(["bench.memory_cap_mb=-1"])
