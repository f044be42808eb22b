"""Nonlinear Klein–Gordon equation in 1-D (Wang, Teng, Perdikaris, arXiv 2001.04536, Sec. 4.1;
also Hwang & Lim, NeurIPS 2024, Sec. 5): the LRA paper's second problem.

    u_tt − u_xx + u³ = f  on x ∈ [0, 1], t ∈ [0, 1],

with the exact solution u = x cos(5πt) + (xt)³, from which f, the initial values u(x, 0) = x,
u_t(x, 0) = 0 and the Dirichlet values at x = 0 and x = 1 follow.

Terms, as in both papers' code: ``residual``; ``initial``, two columns (u − x, u_t), its loss the
sum of the two columns' means (``columns``); ``boundary``, the points spread evenly over the edges
x = 0 and x = 1, its loss the sum of the two edges' means (``reduction: paper``). Losses: three,
residual | initial | boundary (the LRA paper's two weights), or two, residual | initial + boundary
(summed). The test grid: 100 × 100 equally spaced points of [0, 1]², scored by ``rel_l2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from problems.base import Batch, Field, Problem, ProblemOptions, face_points, latin_hypercube, sum_of_part_means
from problems.derivatives import jet

EDGES = ((0, 0), (0, 1))
"""x = 0, then x = 1."""


@dataclass
class KleinGordonOptions(ProblemOptions):
    grid: int = 100
    """Points per axis of the test grid."""


class KleinGordon(Problem):
    Options = KleinGordonOptions
    input_names = ("x", "t")
    field_names = ("u",)
    terms = ("residual", "initial", "boundary")
    groupings = {2: (("residual",), ("initial", "boundary")), 3: (("residual",), ("initial",), ("boundary",))}
    lower = (0.0, 0.0)
    upper = (1.0, 1.0)
    group_reduction = "sum"
    term_reductions = {"initial": "columns"}

    def sample_term(self, term: str, n: int, generator: torch.Generator) -> Batch:
        lo, hi = self.box_lower, self.box_upper
        if term == "residual":
            return Batch(latin_hypercube(n, lo, hi, generator))
        if term == "initial":
            inputs = face_points(n, lo, hi, ((1, 0),), generator)
        elif term == "boundary":
            inputs = face_points(n, lo, hi, EDGES, generator)
        else:
            raise KeyError(term)
        return Batch(inputs, self.target(term, inputs))

    def target(self, term: str, inputs: Tensor) -> Tensor | None:
        """(u, u_t) = (x, 0) at t = 0; the exact u on the edges."""
        if term == "initial":
            return torch.cat([inputs[:, :1], torch.zeros_like(inputs[:, :1])], dim=1)
        return super().target(term, inputs)

    def forcing(self, inputs: Tensor) -> Tensor:
        """f = u_tt − u_xx + u³ of the exact solution, [N, 1]."""
        x, t = inputs[:, :1], inputs[:, 1:2]
        u_tt = -25 * math.pi**2 * x * torch.cos(5 * math.pi * t) + 6 * x**3 * t
        u_xx = 6 * x * t**3
        return u_tt - u_xx + self.exact(inputs) ** 3

    def pde_residual(self, fn: Field, inputs: Tensor) -> Tensor:
        j = jet(fn, inputs, operator={(1, 1): 1.0, (0, 0): -1.0}, fast=self.fast)
        return j.op + j.value**3 - self.forcing(inputs)

    def term_residual(self, fn: Field, batch: Batch, term: str) -> Tensor:
        if term == "initial":
            j = jet(fn, batch.inputs, first=(1,), fast=self.fast)
            return torch.cat([j.value, j.d(1)], dim=1) - batch.targets
        return super().term_residual(fn, batch, term)

    def term_loss(self, fn: Field, batch: Batch, term: str) -> Tensor:
        """The papers' boundary loss: one mean per edge, summed (``reduction: paper``)."""
        if term == "boundary" and self.options.reduction == "paper":
            return sum_of_part_means(self.term_residual(fn, batch, term).square(), len(EDGES))
        return super().term_loss(fn, batch, term)

    def exact(self, inputs: Tensor) -> Tensor:
        x, t = inputs[:, :1], inputs[:, 1:2]
        return x * torch.cos(5 * math.pi * t) + (x * t) ** 3

    def test_grid(self) -> np.ndarray:
        axis = np.linspace(0.0, 1.0, self.options.grid)
        xx, tt = np.meshgrid(axis, axis)
        return np.stack([xx.ravel(), tt.ravel()], axis=1)

    def compute_reference(self) -> tuple[np.ndarray, np.ndarray]:
        inputs = self.test_grid()
        with torch.no_grad():
            return inputs, self.exact(torch.from_numpy(inputs)).numpy()

    def reference_key(self) -> str:
        return str(self.options.grid)
