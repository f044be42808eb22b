"""Every method (each YAML in configs/method/) on every problem and grouping, through the trainer;
exact resume from its state; bad options fail before training."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pandas as pd
import pytest
import torch
from hydra.utils import get_class
from omegaconf import OmegaConf

from pinnbench import records
from pinnbench.cli import config_dir
from pinnbench.commands.methods import describe_methods
from pinnbench.errors import ConfigError
from pinnbench.methods.base import WeightingMethod
from pinnbench.settings import typed_options
from pinnbench.train import prepare, train
from tests.conftest import TINY, compose_config, problem_node, run_cli, tiny_problem
from tests.methods.toy import ToyLosses, flat_gradient, small_network

METHODS = sorted(p.stem for p in (config_dir() / "method").glob("*.yaml"))
PROBLEMS = sorted(p.stem for p in (config_dir() / "problem").glob("*.yaml"))


def groupings(problem: str) -> list[int]:
    target = problem_node(problem)._target_
    return sorted(get_class(target).groupings)


def method_class(method: str) -> tuple[type, object]:
    return typed_options("method", OmegaConf.load(config_dir() / "method" / f"{method}.yaml"))


def test_the_paper_s_eight_methods_are_configured():
    assert {"adam", "lra", "minmax", "relobralo", "pcgrad", "imtlg", "config", "mconfig"} <= set(METHODS)


def test_pinnbench_methods_lists_the_newer_methods_with_their_papers():
    entries = {e["name"]: e for e in describe_methods()}
    papers = {"dcgd": "Hwang & Lim, NeurIPS 2024", "gradnorm": "Wang et al. 2023", "ntk": "Wang, Yu, Perdikaris 2022"}
    for name, paper in papers.items():
        assert paper in entries[name]["description"]
    assert entries["dcgd"]["options"] == {"variant": "center"}
    assert entries["gradnorm"]["options"] == {"momentum": 0.9, "every": 1000}
    assert entries["ntk"]["options"] == {"momentum": 0.9, "every": 1000, "samples": 64}


CASES = [pytest.param(m, p, n, (), id=f"{m}-{p}-n{n}") for p in PROBLEMS for n in groupings(p) for m in METHODS]
CASES += [pytest.param("dcgd", "burgers", n, (f"method.variant={v}",), id=f"dcgd-{v}-burgers-n{n}")
          for v in ("avg", "proj") for n in (2, 3)]


@pytest.mark.parametrize("method, problem, n_losses, options", CASES)
def test_trains_a_few_iterations(tmp_path, method, problem, n_losses, options):
    """Three iterations (as many as losses where there are more: M-ConFIG evaluates one a time);
    gradnorm and ntk recompute their weights at the second."""
    iterations = max(3, n_losses)
    setup = prepare(compose_config(f"problem={problem}", f"method={method}", f"n_losses={n_losses}", *options,
                                   *tiny_problem(problem), f"budget.iterations={iterations}", "log_every=1",
                                   "quiet=true", "plot=false"))
    summary = train(setup, tmp_path)
    assert summary["status"] == "completed" and summary["iterations"] == iterations
    assert math.isfinite(summary["test_mse"])
    history = pd.read_csv(tmp_path / records.HISTORY)
    losses = [f"loss_{name}" for name in setup.loss_names]
    assert history.loc[history.iteration == iterations, losses].notna().all(axis=None)
    if issubclass(setup.method_cls, WeightingMethod):
        weights = history.loc[history.iteration > 0, [f"weight_{name}" for name in setup.loss_names]]
        assert weights.notna().all(axis=None)


def test_mconfig_evaluates_only_the_refreshed_loss(tmp_path):
    """Over 6 training iterations ConFIG evaluates its 3 losses every iteration, M-ConFIG the one it
    refreshes; after training, the label-free objective (train.final_scores) evaluates each loss once."""
    counts = {}
    for method in ("config", "mconfig"):
        setup = prepare(compose_config(*TINY, f"method={method}", "budget.iterations=6"))
        calls, phase = {"training": [], "scoring": []}, ["training"]
        original, label_free = setup.problem.group_loss, setup.problem.label_free
        setup.problem.group_loss = lambda fn, batches, group: calls[phase[0]].append(group) or original(fn, batches, group)
        setup.problem.label_free = lambda *args: phase.__setitem__(0, "scoring") or label_free(*args)
        summary = train(setup, tmp_path / method)
        counts[method] = len(calls["training"])
        assert sorted(calls["scoring"]) == sorted(setup.groups) and "label_free" in summary
    assert counts == {"config": 18, "mconfig": 6}


# ----- state: resuming equals not stopping -----------------------------------------------------------
STATEFUL = [pytest.param(m, {}, id=m) for m in METHODS] + [
    pytest.param("mconfig", {"order": "random", "refresh": 2}, id="mconfig-random-refresh2"),
    pytest.param("dcgd", {"variant": "avg"}, id="dcgd-avg"),
    pytest.param("dcgd", {"variant": "proj"}, id="dcgd-proj"),
    pytest.param("gradnorm", {"every": 3}, id="gradnorm-every3"),
    pytest.param("ntk", {"every": 3, "samples": 5}, id="ntk-every3-samples5"),
]


@pytest.mark.parametrize("method, options", STATEFUL)
def test_state_dict_round_trip_continues_exactly(method, options):
    cls, opts = method_class(method)
    for key, value in options.items():
        setattr(opts, key, value)
    model = small_network()
    losses = ToyLosses(model, 3)
    params = list(model.parameters())

    def run(method_obj, optimizer, steps):
        grads = []
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            method_obj.step(losses)
            grads.append(flat_gradient(params).clone())
            optimizer.step()
        return grads

    first = cls(opts, 3, params)
    optimizer = first.make_optimizer(1e-2)
    run(first, optimizer, 5)
    saved = copy.deepcopy((model.state_dict(), optimizer.state_dict(), first.state_dict()))
    uninterrupted = run(first, optimizer, 6)

    model.load_state_dict(saved[0])
    torch.manual_seed(1234)  # a fresh method must not depend on the global RNG once its state is loaded
    second = cls(opts, 3, params)
    optimizer = second.make_optimizer(1e-2)
    optimizer.load_state_dict(saved[1])
    second.load_state_dict(saved[2])
    resumed = run(second, optimizer, 6)
    assert all(torch.equal(a, b) for a, b in zip(resumed, uninterrupted))


class Interrupt(Exception):
    pass


RESUMED = [pytest.param(m, (), id=m) for m in METHODS if m not in ("adam", "config")] + [
    pytest.param("gradnorm", ("method.every=5",), id="gradnorm-every5"),
    pytest.param("ntk", ("method.every=5", "method.samples=8"), id="ntk-every5-samples8"),
]


@pytest.mark.parametrize("method, options", RESUMED)
def test_resumed_run_ends_where_an_uninterrupted_run_ends(tmp_path, method, options):
    args = (*TINY, f"method={method}", *options, "budget.iterations=24", "checkpoint_every=12", "eval_every=12",
            "seed=2")
    whole = train(prepare(compose_config(*args)), tmp_path / "whole")

    def interrupt(iteration):
        if iteration == 18:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(prepare(compose_config(*args)), tmp_path / "cut", on_iteration=interrupt)
    resumed = train(prepare(compose_config(*args)), tmp_path / "cut")
    assert resumed["resumed_from"] == 12 and resumed["test_mse"] == whole["test_mse"]
    a = records.load_checkpoint(tmp_path / "whole" / records.CHECKPOINT)
    b = records.load_checkpoint(tmp_path / "cut" / records.CHECKPOINT)
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key])
    h_whole = pd.read_csv(tmp_path / "whole" / records.HISTORY).drop(columns="seconds")
    h_cut = pd.read_csv(tmp_path / "cut" / records.HISTORY).drop(columns="seconds")
    pd.testing.assert_frame_equal(h_whole, h_cut)


# ----- bad options ---------------------------------------------------------------------------------
BAD_OPTIONS = [
    (["method=mconfig", "method.refresh=0"], "method.refresh=0"),
    (["method=mconfig", "method.refresh=4"], "method.refresh=4"),
    (["method=mconfig", "n_losses=2", "method.refresh=3"], "method.refresh=3"),
    (["method=mconfig", "method.beta1=-0.1"], "method.beta1=-0.1"),
    (["method=mconfig", "method.beta2=-0.5"], "method.beta2=-0.5"),
    (["method=mconfig", "method.beta1=1.0"], "method.beta1=1.0"),
    (["method=mconfig", "method.order=zigzag"], "method.order='zigzag'"),
    (["method=lra", "method.beta=-0.1"], "method.beta=-0.1"),
    (["method=relobralo", "method.beta=-0.1"], "method.beta=-0.1"),
    (["method=relobralo", "method.tau=0"], "method.tau=0"),
    (["method=relobralo", "method.rho=1.5"], "method.rho=1.5"),
    (["method=minmax", "method.lr=-1"], "method.lr=-1"),
    (["method=dcgd", "method.variant=middle"], "method.variant='middle'"),
    (["method=gradnorm", "method.momentum=1.0"], "method.momentum=1.0"),
    (["method=gradnorm", "method.every=0"], "method.every=0"),
    (["method=ntk", "method.momentum=-0.1"], "method.momentum=-0.1"),
    (["method=ntk", "method.samples=-1"], "method.samples=-1"),
]


@pytest.mark.parametrize("overrides, key", BAD_OPTIONS, ids=[" ".join(o) for o, _ in BAD_OPTIONS])
def test_out_of_range_options_are_refused_before_training(overrides, key):
    with pytest.raises(ConfigError, match="allowed") as error:
        prepare(compose_config(*TINY, *overrides))
    assert key in str(error.value)


CLI_BAD_INPUT = [
    (["method=mconfg"], "method"),
    (["method=mconfig", "method.momentum=0.9"], "method.momentum"),
    (["method=mconfig", "method.refresh=5"], "method.refresh=5"),
    (["method=mconfig", "method.beta2=-0.1"], "method.beta2=-0.1"),
]


@pytest.mark.parametrize("overrides, key", CLI_BAD_INPUT, ids=[" ".join(o) for o, _ in CLI_BAD_INPUT])
def test_the_command_line_reports_bad_method_input_without_a_traceback(tmp_path, overrides, key):
    result = run_cli("run", *overrides, f"hydra.run.dir={tmp_path / 'run'}", "quiet=true", timeout=120)
    assert result.returncode != 0
    assert "error" in result.stderr.lower() and key in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not Path(tmp_path / "run" / records.CHECKPOINT).exists()
