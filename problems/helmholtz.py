"""Helmholtz equation in 2-D (Wang, Teng, Perdikaris, "Understanding and mitigating gradient
pathologies in physics-informed neural networks", SIAM J. Sci. Comput. 43 (2021), arXiv 2001.04536,
Sec. 2.3; also Hwang & Lim, NeurIPS 2024, Sec. 5): the LRA paper's home problem.

    Δu + k² u = q  on (x, y) ∈ (−1, 1)²,   u = h on the boundary,

with the exact solution u = sin(a₁πx) sin(a₂πy) (a₁ = 1, a₂ = 4, k = 1), from which
q = (k² − (a₁² + a₂²) π²) u and h = u on the four edges (zero up to rounding).

Two losses, as in both papers' code: the residual, mean of r² over its points, and the boundary,
the sum over the four edges of the mean squared misfit on each (``reduction: paper``; the points of
the term ``boundary`` are spread evenly over the edges, 128 per edge at the papers' sizes). With
``reduction: per_column`` the boundary loss is the mean over all its points (a quarter of it).
The test grid is the papers': 100 × 100 equally spaced points of [−1, 1]², scored by the relative
L2 error ``rel_l2`` (the papers' metric) beside ``test_mse``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from problems.base import Batch, Field, Problem, ProblemOptions, face_points, latin_hypercube, sum_of_part_means
from problems.derivatives import jet

EDGES = ((1, 0), (0, 1), (1, 1), (0, 0))
"""The four edges as (axis, side): bottom y = −1, right x = 1, top y = 1, left x = −1 (the papers' order)."""


@dataclass
class HelmholtzOptions(ProblemOptions):
    k: float = 1.0
    """Wave number (the papers' λ = k² = 1)."""
    a1: float = 1.0
    """Frequency of the solution in x, in half-periods over [−1, 1]."""
    a2: float = 4.0
    """Frequency in y."""
    grid: int = 100
    """Points per axis of the test grid."""


class Helmholtz(Problem):
    Options = HelmholtzOptions
    input_names = ("x", "y")
    field_names = ("u",)
    terms = ("residual", "boundary")
    groupings = {2: (("residual",), ("boundary",))}
    lower = (-1.0, -1.0)
    upper = (1.0, 1.0)

    def sample_term(self, term: str, n: int, generator: torch.Generator) -> Batch:
        lo, hi = self.box_lower, self.box_upper
        if term == "residual":
            return Batch(latin_hypercube(n, lo, hi, generator))
        if term == "boundary":
            inputs = face_points(n, lo, hi, EDGES, generator)
            return Batch(inputs, self.exact(inputs))
        raise KeyError(term)

    def forcing(self, inputs: Tensor) -> Tensor:
        """q = (k² − (a₁² + a₂²) π²) u, [N, 1]."""
        o = self.options
        return (o.k**2 - (o.a1**2 + o.a2**2) * math.pi**2) * self.exact(inputs)

    def pde_residual(self, fn: Field, inputs: Tensor) -> Tensor:
        # Δu as one second-order stream on the fast path
        j = jet(fn, inputs, operator={(0, 0): 1.0, (1, 1): 1.0}, fast=self.fast)
        return j.op + self.options.k**2 * j.value - self.forcing(inputs)

    def term_loss(self, fn: Field, batch: Batch, term: str) -> Tensor:
        """The papers' boundary loss: one mean per edge, summed (``reduction: paper``)."""
        if term == "boundary" and self.options.reduction == "paper":
            return sum_of_part_means(self.term_residual(fn, batch, term).square(), len(EDGES))
        return super().term_loss(fn, batch, term)

    def exact(self, inputs: Tensor) -> Tensor:
        o = self.options
        return torch.sin(o.a1 * math.pi * inputs[:, :1]) * torch.sin(o.a2 * math.pi * inputs[:, 1:2])

    def test_grid(self) -> np.ndarray:
        """grid × grid points, x fastest (the papers' meshgrid)."""
        axis = np.linspace(-1.0, 1.0, self.options.grid)
        xx, yy = np.meshgrid(axis, axis)
        return np.stack([xx.ravel(), yy.ravel()], axis=1)

    def compute_reference(self) -> tuple[np.ndarray, np.ndarray]:
        inputs = self.test_grid()
        with torch.no_grad():
            return inputs, self.exact(torch.from_numpy(inputs)).numpy()

    def reference_key(self) -> str:
        o = self.options
        return f"{o.a1!r}:{o.a2!r}:{o.grid}"
