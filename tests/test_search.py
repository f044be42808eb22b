"""Search spaces (``search:`` blocks beside each method and optimiser) and the quasi-random design."""

from __future__ import annotations

import math

import numpy as np
import pytest
from omegaconf import OmegaConf, open_dict

from pinnbench.cli import config_dir
from pinnbench.errors import ConfigError
from pinnbench.search import Dimension, design, dimension, group_space, space
from pinnbench.train import prepare, resolved_config
from tests.conftest import TINY, compose_config

METHODS = ("adam", "config", "dcgd", "gradnorm", "imtlg", "lra", "lra_code", "lra_paper", "mconfig", "minmax", "ntk",
           "ntk_paper", "pcgrad", "relobralo", "torchjd", "upgrad")
"""Every method; a new one gets the space battery by being added here."""
OPTIMIZERS = ("adam", "muon", "psgd", "soap")


def test_every_method_and_optimiser_is_in_the_battery():
    assert sorted(p.stem for p in (config_dir() / "method").glob("*.yaml")) == sorted(METHODS)
    assert sorted(p.stem for p in (config_dir() / "optimizer").glob("*.yaml")) == sorted(OPTIMIZERS)


def _trains_at(group: str, name: str, n_losses: int) -> None:
    """Every point of a 2-point design of the group's space (and the ends of every range) makes a valid run."""
    base = [f"{group}={name}", f"n_losses={n_losses}", *TINY]
    cfg = compose_config(*base)
    dims = space(cfg, compose_config().tune.lr)
    assert dims[0].name == "lr" and len({d.name for d in dims}) == len(dims)
    assert all(d.name.startswith(f"{group}.") for d in dims[1:])
    ends = [{d.name: v for d in dims for v in ([d.low] if d.choices is None else [d.choices[0]])},
            {d.name: v for d in dims for v in ([d.high] if d.choices is None else [d.choices[-1]])}]
    for point in design(dims, 2, seed=0) + ends:
        run = compose_config(*base, *(f"{k}={v}" for k, v in point.items()))
        assert "search" in run[group] or group == "optimizer"
        setup = prepare(run)
        recorded = resolved_config(setup)
        assert "search" not in recorded[group]
        for key, value in point.items():
            where = recorded if key == "lr" else recorded[key.split(".")[0]]
            assert where[key.split(".")[-1]] == pytest.approx(value) if isinstance(value, float) else value


@pytest.mark.parametrize("method", METHODS)
def test_each_method_space_is_valid_and_every_design_point_is_a_valid_run(method):
    _trains_at("method", method, 3)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_each_optimizer_space_is_valid_and_every_design_point_is_a_valid_run(optimizer):
    _trains_at("optimizer", optimizer, 3)


def _node(group: str, name: str, search: dict):
    node = OmegaConf.load(config_dir() / group / f"{name}.yaml")
    with open_dict(node):
        node.search = search
    return node


@pytest.mark.parametrize("search, words", [
    ({"alpha": {"low": 0.1, "high": 0.9}}, ["alpha is not an option of method 'lra'", "allowed: beta"]),
    ({"beta": {"low": 0.9, "high": 0.5}}, ["low < high"]),
    ({"beta": {"low": 0.9, "high": 1.0, "scale": "log1m"}}, ["needs high < 1"]),
    ({"beta": {"low": 0.0, "high": 0.5, "scale": "log"}}, ["needs low > 0"]),
    ({"beta": {"low": 0.1, "high": 0.5, "scale": "cubic"}}, ["not a scale", "log1m"]),
    ({"beta": {"choices": []}}, ["non-empty list"]),
    ({"beta": {"low": 0.1}}, ["needs low and high"]),
])
def test_a_malformed_space_is_a_clear_error_naming_the_file(search, words):
    with pytest.raises(ConfigError) as error:
        group_space("method", _node("method", "lra", search))
    assert "configs/method/lra.yaml search" in str(error.value)
    assert all(w in str(error.value) for w in words), str(error.value)


def test_a_choice_the_option_refuses_is_an_error():
    with pytest.raises(ConfigError, match="variant='sideways' is refused"):
        group_space("method", _node("method", "dcgd", {"variant": {"choices": ["center", "sideways"]}}))


def test_dimension_values_span_their_range_on_their_scale():
    log = Dimension("lr", 1e-4, 1e-1, "log")
    assert log.value(0.0) == pytest.approx(1e-4) and log.value(0.5) == pytest.approx(10 ** -2.5, rel=1e-5)
    one_minus = Dimension("beta", 0.9, 0.9999, "log1m")
    assert one_minus.value(0.0) == pytest.approx(0.9)
    assert 1 - one_minus.value(0.5) == pytest.approx(10 ** -2.5, rel=1e-4)  # 1 - beta log-uniform in [1e-4, 0.1]
    assert one_minus.value(0.999999) == pytest.approx(0.9999, abs=1e-8)
    linear = Dimension("tau", 1.0, 3.0)
    assert linear.value(0.25) == 1.5
    assert Dimension("v", choices=("a", "b", "c")).value(0.99) == "c"


def test_the_design_is_fixed_distinct_paired_in_lr_and_a_longer_one_extends_it():
    lr = dimension("lr", {"low": 1e-4, "high": 1e-1, "scale": "log"}, "test")
    beta = dimension("method.beta", {"low": 0.9, "high": 0.9999, "scale": "log1m"}, "test")
    tau = dimension("method.tau", {"low": 0.01, "high": 10.0, "scale": "log"}, "test")
    alone, three = design([lr], 16, seed=0), design([lr, beta, tau], 16, seed=0)
    assert [p["lr"] for p in alone] == [p["lr"] for p in three]  # trial k: the same lr for every method
    assert design([lr, beta, tau], 16, seed=0) == three and design([lr, beta, tau], 8, seed=0) == three[:8]
    assert design([lr], 16, seed=1) != alone
    assert len({tuple(p.values()) for p in three}) == 16
    logs = np.log10([p["lr"] for p in alone])
    assert logs.min() >= -4 and logs.max() <= -1
    # quasi-random: every quarter of the log range holds 4 of the 16 learning rates
    assert np.histogram(logs, bins=4, range=(-4, -1))[0].tolist() == [4, 4, 4, 4]
    assert all(0.9 <= p["method.beta"] <= 0.9999 and 0.01 <= p["method.tau"] <= 10 for p in three)
    assert not any(math.isnan(v) for p in three for v in p.values())
