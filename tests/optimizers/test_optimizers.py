"""Every optimiser (each YAML in configs/optimizer/) trains every problem, resumes exactly, takes the
run's schedule; optimizer=adam trains as before the optimiser was a setting; bad combinations fail
before training with one line."""

from __future__ import annotations

import copy
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from pinnbench import records
from pinnbench.cli import config_dir
from pinnbench.errors import ConfigError
from pinnbench.optimizers.muon import muon_matrices
from pinnbench.settings import typed_options
from pinnbench.train import build, main_step, prepare, train
from tests.conftest import TINY, compose_config, run_cli, tiny_problem
from tests.methods.toy import ToyLosses, flat_parameters, small_network

OPTIMIZERS = sorted(p.stem for p in (config_dir() / "optimizer").glob("*.yaml"))
PROBLEMS = sorted(p.stem for p in (config_dir() / "problem").glob("*.yaml"))
LIBRARY = {"soap": "pytorch_optimizer", "psgd": "pytorch_optimizer"}
"""Optimisers that need an optional library (the ``optimizers`` extra)."""


def needs_library(optimizer: str) -> None:
    if optimizer in LIBRARY:
        pytest.importorskip(LIBRARY[optimizer])


def optimizer_of(name: str):
    cls, options = typed_options("optimizer", OmegaConf.load(config_dir() / "optimizer" / f"{name}.yaml"))
    return cls(options)


def test_the_optimisers_are_configured():
    assert {"adam", "soap", "muon", "psgd"} <= set(OPTIMIZERS)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_each_yaml_states_the_defaults_of_its_options(name):
    """The YAML is the documented source of the settings: it names every option at its default.
    Its ``search:`` block is the tuner's space (pinnbench/search.py), not an option of the run."""
    node = OmegaConf.load(config_dir() / "optimizer" / f"{name}.yaml")
    cls, options = typed_options("optimizer", node)
    assert options == cls.Options() and set(node) - {"_target_", "search"} == set(vars(options))
    assert "search" in node and "search" not in vars(options)


@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_trains_every_problem_a_few_iterations(tmp_path, optimizer, problem):
    """ConFIG's direction, each optimiser's step: three iterations that change every parameter."""
    needs_library(optimizer)
    setup = prepare(compose_config(f"problem={problem}", *tiny_problem(problem), "method=config",
                                   f"optimizer={optimizer}", "budget.iterations=3", "quiet=true", "plot=false"))
    start = flat_parameters(build(setup).model)
    summary = train(setup, tmp_path)
    assert summary["status"] == "completed" and summary["iterations"] == 3 and math.isfinite(summary["test_mse"])
    state = records.load_checkpoint(tmp_path / records.CHECKPOINT)
    end = torch.cat([v.reshape(-1) for v in state["model"].values()])
    assert torch.isfinite(end).all() and not torch.equal(start, end)
    assert summary["config"]["optimizer"]["name"] == optimizer


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_state_dict_round_trip_continues_exactly(optimizer):
    """The optimiser's state dict and the global RNGs (PSGD draws its probes there), as a checkpoint
    keeps them, continue a run exactly."""
    needs_library(optimizer)
    model = small_network()
    params = list(model.parameters())
    losses = ToyLosses(model, 3)
    chosen = optimizer_of(optimizer)

    def run(opt, steps):
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            losses().sum().backward()
            opt.step()
        return flat_parameters(model)

    first = chosen.build(params, 1e-2)
    run(first, 5)
    saved = copy.deepcopy((model.state_dict(), first.state_dict(), torch.get_rng_state(), np.random.get_state()))
    uninterrupted = run(first, 6)
    model.load_state_dict(saved[0])
    second = chosen.build(params, 1e-2)
    second.load_state_dict(saved[1])
    torch.set_rng_state(saved[2])
    np.random.set_state(saved[3])
    assert torch.equal(run(second, 6), uninterrupted)


class Interrupt(Exception):
    pass


def interrupted_and_whole(tmp_path: Path, args: tuple[str, ...], stop: int) -> tuple[dict, dict]:
    """(summary of the whole run, summary of the run interrupted after iteration ``stop`` and resumed)."""
    whole = train(prepare(compose_config(*args)), tmp_path / "whole")

    def interrupt(iteration):
        if iteration == stop:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(prepare(compose_config(*args)), tmp_path / "cut", on_iteration=interrupt)
    return whole, train(prepare(compose_config(*args)), tmp_path / "cut")


def assert_same_records(tmp_path: Path) -> None:
    a = records.load_checkpoint(tmp_path / "whole" / records.CHECKPOINT)
    b = records.load_checkpoint(tmp_path / "cut" / records.CHECKPOINT)
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    h_whole = pd.read_csv(tmp_path / "whole" / records.HISTORY).drop(columns="seconds")
    h_cut = pd.read_csv(tmp_path / "cut" / records.HISTORY).drop(columns="seconds")
    pd.testing.assert_frame_equal(h_whole, h_cut)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_resumed_run_ends_where_an_uninterrupted_run_ends(tmp_path, optimizer):
    needs_library(optimizer)
    args = (*TINY, "method=config", f"optimizer={optimizer}", "budget.iterations=24", "checkpoint_every=12",
            "eval_every=12", "seed=2")
    whole, resumed = interrupted_and_whole(tmp_path, args, stop=18)
    assert resumed["resumed_from"] == 12 and resumed["test_mse"] == whole["test_mse"]
    assert_same_records(tmp_path)


def test_optimizer_adam_trains_as_before_optimizers_were_a_setting_to_a_few_roundings(tmp_path):
    """tests/fixtures/before_optimizers.pt: the final parameters of short runs (Adam, ConFIG,
    M-ConFIG, MinMax, LRA; float32 and float64) trained by the trainer at commit 3b92906, before
    this setting existed. They were equal bit for bit (same machine type and PyTorch) until commit
    972439e, which deliberately reordered the derivative passes' floating-point work (hidden biases
    added inside ``addmm``, sums over points in rows of 400): since then the parameters agree to a
    few roundings (at most 0.5 float32 and 2 float64 units at magnitude 1 after 12 iterations), which
    this test allows with margin (16 units of the dtype), far below one step's change (learning rate
    1e-3). tests/test_numerics_pinned.py pins today's numerics to 1e-9."""
    fixture = torch.load(Path(__file__).parent.parent / "fixtures" / "before_optimizers.pt", weights_only=False)
    for key, made in fixture["runs"].items():
        summary = train(prepare(compose_config(*made["overrides"], "optimizer=adam")), tmp_path / key)
        model = records.load_checkpoint(tmp_path / key / records.CHECKPOINT)["model"]
        assert made["model"].keys() == model.keys()
        for name, before in made["model"].items():
            assert model[name].dtype == before.dtype, (key, name)
            atol = 16 * torch.finfo(before.dtype).eps * max(1.0, before.abs().max().item())
            torch.testing.assert_close(model[name], before, rtol=0, atol=atol, msg=f"{key} {name}")
        eps = torch.finfo(made["model"]["0.bias"].dtype).eps
        assert summary["test_mse"] == pytest.approx(made["test_mse"], rel=16 * eps, abs=0), key


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_the_schedule_sets_the_learning_rate_of_every_parameter_group(optimizer):
    needs_library(optimizer)
    setup = prepare(compose_config(*TINY, "method=adam", f"optimizer={optimizer}"))
    trainee = build(setup)
    main_step(setup, trainee, 0, 0.0123)
    assert trainee.optimizer.param_groups and all(g["lr"] == 0.0123 for g in trainee.optimizer.param_groups)


def test_muon_steps_the_hidden_matrices_and_adam_the_rest():
    setup = prepare(compose_config(*TINY, "method=adam", "optimizer=muon"))
    trainee = build(setup)
    muon, adam = trainee.optimizer.optimizers
    weights = [m.weight for m in trainee.model.linears]
    assert isinstance(muon, torch.optim.Muon) and isinstance(adam, torch.optim.Adam)
    assert [id(p) for p in muon.param_groups[0]["params"]] == [id(w) for w in weights[1:-1]]
    rest = {id(p) for p in adam.param_groups[0]["params"]}
    assert rest == {id(p) for p in trainee.params} - {id(w) for w in weights[1:-1]}
    assert len(weights) == 6 and len(rest) == 2 + 6  # first and last weights, six biases
    assert muon_matrices(trainee.params, "all") == weights


def test_soap_gets_the_authors_settings_for_pinns():
    pytest.importorskip("pytorch_optimizer")
    group = optimizer_of("soap").build(list(small_network().parameters()), 1e-3).param_groups[0]
    assert group["betas"] == (0.9, 0.999) and group["precondition_frequency"] == 2
    assert group["weight_decay"] == 0.0 and group["shampoo_beta"] is None and group["eps"] == 1e-8


# ----- bad combinations ------------------------------------------------------------------------------
BAD = [
    (["method=mconfig", "optimizer=soap"], "method=mconfig takes its own Adam-type steps"),
    (["method=mconfig", "optimizer=muon"], "got optimizer=muon"),
    (["method=mconfig", "optimizer.beta1=0.8"], "got optimizer=adam with beta1=0.8"),
    (["optimizer=soap", "optimizer.precondition_frequency=0"], "optimizer.precondition_frequency=0"),
    (["optimizer=muon", "optimizer.matrices=some"], "optimizer.matrices='some'"),
    (["optimizer=muon", "optimizer.momentum=1.0"], "optimizer.momentum=1.0"),
    (["optimizer=psgd", "optimizer.update_probability=2"], "optimizer.update_probability=2"),
    (["optimizer.beta2=1.5"], "optimizer.beta2=1.5"),
]


@pytest.mark.parametrize("overrides, message", BAD, ids=[" ".join(o) for o, _ in BAD])
def test_bad_combinations_are_refused_before_training(overrides, message):
    with pytest.raises(ConfigError) as error:
        prepare(compose_config(*TINY, *overrides))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_missing_library_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pytorch_optimizer", None)  # import pytorch_optimizer: ImportError
    with pytest.raises(ConfigError, match=r'optimizer=soap needs the pytorch_optimizer library.*pinnbench\[optimizers\]'):
        prepare(compose_config(*TINY, "optimizer=soap"))


@pytest.mark.parametrize("overrides, message", [
    (["method=mconfig", "optimizer=soap"], "method=mconfig takes its own Adam-type steps"),
    (["optimizer=lion"], "optimizer=lion is not one of configs/optimizer/"),
    (["optimizer=soap", "optimizer.betas=1"], "optimizer.betas is not an option of optimizer 'soap'"),
])
def test_the_command_line_says_it_in_one_line(tmp_path, overrides, message):
    result = run_cli("run", *overrides, f"hydra.run.dir={tmp_path / 'run'}", "quiet=true", timeout=120)
    assert result.returncode == 2 and result.stderr.startswith("error: ") and message in result.stderr
    assert result.stderr.strip().count("\n") == 0 and not (tmp_path / "run").exists()


def test_a_chain_takes_a_later_parameter_group_into_its_last_member():
    model = small_network()
    chain = optimizer_of("muon").build(list(model.parameters()), 1e-3)
    extra = torch.zeros(3, requires_grad=True)
    chain.add_param_group({"params": [extra], "lr": 5e-3})
    assert chain.param_groups[-1]["params"] == [extra] and chain.optimizers[-1].param_groups[-1]["lr"] == 5e-3
    extra.grad = torch.ones(3)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    chain.step()
    assert (extra < 0).all()
