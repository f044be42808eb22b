"""Shared fixtures: compose a run configuration the way ``pinnbench run`` does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from pinnbench.cli import _register, config_dir

TINY = ("problem.sizes.cpu.points.residual=64", "problem.sizes.cpu.points.boundary=16",
        "problem.sizes.cpu.points.initial=16", "quiet=true", "plot=false")
"""Overrides for a run that takes well under a second per iteration-batch."""


def compose_config(*overrides: str):
    """The composed configuration of ``pinnbench run <overrides>`` (without the hydra node)."""
    _register()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            return compose("config", overrides=list(overrides))
    finally:
        GlobalHydra.instance().clear()


def problem_node(problem: str):
    """The composed ``problem`` node (a problem YAML may also set global defaults)."""
    return compose_config(f"problem={problem}").problem


def tiny_problem(problem: str) -> list[str]:
    """Overrides that shrink a problem: few points per term and a small network."""
    size = problem_node(problem).sizes.cpu
    overrides = [f"problem.sizes.cpu.points.{term}={64 if term == 'residual' else 16}" for term in size.points]
    overrides += [f"problem.sizes.cpu.{key}={value}" for key, value in (("width", 16), ("hidden_layers", 2)) if key in size]
    return overrides


@pytest.fixture
def make_config():
    return compose_config


def run_cli(*args: str, cwd: str | Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the ``pinnbench`` console program in a subprocess."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "pinnbench", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout)


def pytest_addoption(parser):
    parser.addoption("--repin", action="store_true", default=False,
                     help="print the values tests/test_numerics_pinned.py should pin instead of checking them")
