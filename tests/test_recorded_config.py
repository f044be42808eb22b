"""A relaunch never mixes runs made under another configuration; unreadable records get a one-line
error that names the file; the reporter imports only our classes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pinnbench import records, sweep
from pinnbench.errors import ConfigError
from pinnbench.report import collect
from pinnbench.train import config_differences, prepare, resolved_config, schema_defaults, train
from tests.conftest import TINY, compose_config, run_cli

FAST = ("budget.iterations=4", *TINY)


def config_now(cfg):
    setup = prepare(cfg)
    return resolved_config(setup), schema_defaults(setup)


def fingerprint(folder: Path) -> dict[str, tuple[str, int]]:
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def finished_run(tmp_path):
    cfg = compose_config("method=adam", *FAST)
    run_dir = tmp_path / "run"
    summary = train(prepare(cfg), run_dir)
    assert summary["status"] == "completed" and summary["config"] == resolved_config(prepare(cfg))
    return cfg, run_dir


def test_the_resolved_config_holds_every_default_and_no_neutral_key():
    config = resolved_config(prepare(compose_config("method=pcgrad", *FAST)))
    assert config["problem"]["reduction"] == "paper" and config["problem"]["test_reference"] == "paper"
    assert config["method"] == {"name": "pcgrad", "order": "fixed"}
    assert config["seed"] == 0 and config["budget"]["iterations"] == 4
    assert not {"quiet", "plot", "threads", "eval_every", "fast"} & set(config)


def test_a_finished_run_of_the_same_config_is_skipped(finished_run):
    cfg, run_dir = finished_run
    before = fingerprint(run_dir)
    result = sweep.run_job(cfg, run_dir, lambda: pytest.fail("trained again"), catch=False,
                           config_now=lambda: config_now(cfg))
    assert result["skipped"] and fingerprint(run_dir) == before


@pytest.mark.parametrize("catch", [False, True])
def test_a_finished_run_of_another_config_is_refused_untouched(finished_run, catch):
    cfg, run_dir = finished_run
    before = fingerprint(run_dir)
    other = compose_config("method=adam", *FAST, "problem.reduction=per_column")
    job = dict(catch=catch, config_now=lambda: config_now(other))
    if catch:
        result = sweep.run_job(other, run_dir, lambda: pytest.fail("trained"), **job)
        assert result["status"] == "refused" and "problem.reduction: 'paper' → 'per_column'" in result["error"]
    else:
        with pytest.raises(ConfigError, match=r"problem\.reduction: 'paper' → 'per_column'.*move the directory away"):
            sweep.run_job(other, run_dir, lambda: pytest.fail("trained"), **job)
    assert fingerprint(run_dir) == before


def test_a_run_recorded_before_configs_were_recorded_is_refused(finished_run):
    cfg, run_dir = finished_run
    summary = records.read_summary(run_dir)
    del summary["config"]
    records.write_json(run_dir / records.SUMMARY, summary)
    with pytest.raises(ConfigError, match="made before run configurations were recorded"):
        sweep.run_job(cfg, run_dir, lambda: pytest.fail("trained"), catch=False,
                      config_now=lambda: config_now(cfg))


def test_a_checkpoint_of_another_config_is_not_resumed(tmp_path):
    cfg = compose_config("method=adam", "budget.iterations=6", "checkpoint_every=2", *TINY)
    run_dir = tmp_path / "run"

    def stop(iteration):
        if iteration == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(prepare(cfg), run_dir, on_iteration=stop)
    assert (run_dir / records.CHECKPOINT).exists() and not (run_dir / records.SUMMARY).exists()
    other = compose_config("method=adam", "budget.iterations=6", "checkpoint_every=2", *TINY, "lr=2e-3")
    with pytest.raises(ConfigError, match=r"checkpoint\.pt was made with another configuration \(lr: 0\.001 → 0\.002\)"):
        train(prepare(other), run_dir)


def test_differences_name_every_changed_and_missing_key():
    old = {"problem": {"reduction": "per_column", "nu": 0.1}, "seed": 0}
    new = {"problem": {"reduction": "paper", "nu": 0.1, "test_reference": "paper"}, "seed": 0}
    assert config_differences(old, new) == ["problem.reduction: 'per_column' → 'paper'",
                                            "problem.test_reference: absent → 'paper'"]
    assert config_differences(new, new) == []
    # an option added since the record: unchanged if the run now uses its default, named otherwise
    defaults = {"problem": {"test_reference": "paper", "reduction": "paper"}}
    assert config_differences(old, new, defaults) == ["problem.reduction: 'per_column' → 'paper'"]
    assert config_differences({"seed": 0}, {"seed": 0, "lr": 0.1}, {"lr": 0.001}) == ["lr: absent → 0.1"]


def test_a_record_lacking_an_option_added_since_is_the_same_run_when_it_takes_the_default(finished_run):
    cfg, run_dir = finished_run
    summary = records.read_summary(run_dir)
    del summary["config"]["problem"]["causal"]
    records.write_json(run_dir / records.SUMMARY, summary)
    assert sweep.run_job(cfg, run_dir, lambda: pytest.fail("trained"), catch=False,
                         config_now=lambda: config_now(cfg))["skipped"]
    other = compose_config("method=adam", *FAST, "problem.causal.chunks=4")
    with pytest.raises(ConfigError, match=r"problem\.causal\.chunks: absent → 4"):
        sweep.run_job(other, run_dir, lambda: pytest.fail("trained"), catch=False, config_now=lambda: config_now(other))


def test_a_corrupt_summary_is_named_on_run_and_listed_by_the_reporter(finished_run):
    cfg, run_dir = finished_run
    (run_dir / records.SUMMARY).write_text('{"status": "compl')
    with pytest.raises(ConfigError, match=r"summary\.json is not valid JSON .* delete it"):
        sweep.run_job(cfg, run_dir, lambda: pytest.fail("trained"), catch=False)
    row = collect.read_run(run_dir)
    assert row["status"] == collect.UNREADABLE and "summary.json is not valid JSON" in row["note"]


def test_a_corrupt_checkpoint_is_named_on_run(tmp_path):
    cfg = compose_config("method=adam", *FAST)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / records.CHECKPOINT).write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match=r"checkpoint\.pt cannot be read .*delete it"):
        train(prepare(cfg), run_dir)


def test_the_command_line_says_it_in_one_line(tmp_path):
    run_dir = tmp_path / "run"
    first = run_cli("run", "method=adam", *FAST, "problem.reduction=per_column", f"hydra.run.dir={run_dir}")
    assert first.returncode == 0, first.stderr
    (run_dir / records.CHECKPOINT).unlink()
    again = run_cli("run", "method=adam", *FAST, f"hydra.run.dir={run_dir}")
    assert again.returncode == 2
    assert again.stderr.strip().count("\n") == 0 and "Traceback" not in again.stderr
    assert again.stderr.startswith("error: ") and "problem.reduction: 'per_column' → 'paper'" in again.stderr


def test_the_reporter_imports_no_class_but_ours(monkeypatch):
    monkeypatch.setattr(collect, "typed_options", lambda *a: pytest.fail("imported a foreign class"))
    assert collect.method_label({"name": "evil", "_target_": "os.system"}, []) == "evil"


def test_the_optimiser_and_the_finishing_phase_are_recorded_and_earlier_records_read_as_adam_and_none():
    now = resolved_config(prepare(compose_config("method=pcgrad", "optimizer=soap", "finish=lbfgs", *FAST,
                                                 "finish.iterations=2")))
    assert now["optimizer"]["name"] == "soap" and now["optimizer"]["precondition_frequency"] == 2
    assert now["finish"]["name"] == "lbfgs" and now["finish"]["iterations"] == 2 and now["finish"]["share"] == 0.2
    default = resolved_config(prepare(compose_config("method=pcgrad", *FAST)))
    assert default["optimizer"] == {"name": "adam", "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
    assert default["finish"] == {"name": "none"}
    earlier = {k: v for k, v in default.items() if k not in ("optimizer", "finish")}
    assert config_differences(earlier, default) == []
    assert "optimizer.name: 'adam' → 'soap'" in config_differences(earlier, now)
