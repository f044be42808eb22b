"""Problems built from their YAML as a run builds them, and independent closed forms to test against."""

from __future__ import annotations

import math

import numpy as np
import torch

from pinnbench.settings import typed_options
from problems.base import Problem
from tests.conftest import compose_config

PROBLEMS = ("burgers", "schrodinger", "kovasznay", "beltrami", "helmholtz", "klein_gordon", "wave", "allen_cahn")
"""Every problem; a new one gets the whole battery by being added here."""

CLOSED_FORM = ("burgers", "kovasznay", "beltrami", "helmholtz", "klein_gordon", "wave")
"""Problems with an exact solution ``Problem.exact``."""


def make_problem(name: str, *overrides: str, dtype: torch.dtype = torch.float64) -> Problem:
    """``configs/problem/<name>.yaml`` (plus overrides) instantiated in ``dtype`` on the CPU."""
    cfg = compose_config(f"problem={name}", *overrides)
    cls, options = typed_options("problem", cfg.problem)
    return cls(options, dtype=dtype)


def kovasznay_np(x: np.ndarray, y: np.ndarray, re: float = 40.0) -> np.ndarray:
    """Kovasznay (1948): (u, v, p) with λ = Re/2 − √(Re²/4 + 4π²), written out once more in numpy."""
    lam = re / 2 - math.sqrt(re * re / 4 + 4 * math.pi * math.pi)
    return np.stack([1 - np.exp(lam * x) * np.cos(2 * np.pi * y),
                     lam / (2 * np.pi) * np.exp(lam * x) * np.sin(2 * np.pi * y),
                     0.5 * (1 - np.exp(2 * lam * x))], axis=1)


def beltrami_np(x: np.ndarray, y: np.ndarray, z: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Ethier & Steinman (1994) with a = d = ν = 1, written out once more in numpy (cyclic in x → y → z)."""
    def velocity(x, y, z):
        return -(np.exp(x) * np.sin(y + z) + np.exp(z) * np.cos(x + y))

    def cross(x, y, z):
        return np.sin(x + y) * np.cos(z + x) * np.exp(y + z)

    u, v, w = velocity(x, y, z), velocity(y, z, x), velocity(z, x, y)
    p = -0.5 * (np.exp(2 * x) + np.exp(2 * y) + np.exp(2 * z)
                + 2 * cross(x, y, z) + 2 * cross(y, z, x) + 2 * cross(z, x, y))
    decay = np.exp(-t)
    return np.stack([u * decay, v * decay, w * decay, p * decay**2], axis=1)
