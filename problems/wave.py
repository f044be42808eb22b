"""Wave equation in 1-D (Wang, Yu, Perdikaris, "When and why PINNs fail to train: a neural tangent
kernel perspective", J. Comput. Phys. 449 (2022) 110768, arXiv 2007.14527, Sec. 7.3): the NTK
weighting paper's home problem.

    u_tt = c² u_xx  on x ∈ [0, 1], t ∈ [0, 1],  c = 2,
    u(0, t) = u(1, t) = 0,  u(x, 0) = sin(πx) + a sin(2cπx),  u_t(x, 0) = 0,  a = ½,

with the exact solution u = sin(πx) cos(cπt) + a sin(2cπx) cos(4cπt) (c = 2: the second mode is
sin(4πx) cos(8πt)).

Terms, as the paper's code (``PINNsNTK_Wave1D.ipynb``): ``residual``; ``initial``, u − u(x, 0);
``boundary``, u at x = 0 and x = 1 (the points spread evenly over the two edges); ``velocity``,
u_t at t = 0. Its three losses are residual | initial + boundary (each a mean, summed: the code's
``loss_bcs``) | velocity, the three NTK weights; 2 losses put velocity with the data terms, 4 keep
every term apart. Test grid: 200 × 200 equally spaced points of [0, 1]², scored by ``rel_l2``.
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
class WaveOptions(ProblemOptions):
    c: float = 2.0
    """Wave speed."""
    a: float = 0.5
    """Amplitude of the second mode."""
    grid: int = 200
    """Points per axis of the test grid."""


class Wave(Problem):
    Options = WaveOptions
    input_names = ("x", "t")
    field_names = ("u",)
    terms = ("residual", "initial", "boundary", "velocity")
    groupings = {2: (("residual",), ("initial", "boundary", "velocity")),
                 3: (("residual",), ("initial", "boundary"), ("velocity",)),
                 4: (("residual",), ("initial",), ("boundary",), ("velocity",))}
    lower = (0.0, 0.0)
    upper = (1.0, 1.0)
    group_reduction = "sum"

    def sample_term(self, term: str, n: int, generator: torch.Generator) -> Batch:
        lo, hi = self.box_lower, self.box_upper
        if term == "residual":
            return Batch(latin_hypercube(n, lo, hi, generator))
        if term in ("initial", "velocity"):
            inputs = face_points(n, lo, hi, ((1, 0),), generator)
        elif term == "boundary":
            inputs = face_points(n, lo, hi, EDGES, generator)
        else:
            raise KeyError(term)
        return Batch(inputs, self.target(term, inputs))

    def target(self, term: str, inputs: Tensor) -> Tensor | None:
        """u(x, 0), zero on the edges, u_t(x, 0) = 0."""
        if term in ("boundary", "velocity"):
            return torch.zeros_like(inputs[:, :1])
        return super().target(term, inputs)

    def pde_residual(self, fn: Field, inputs: Tensor) -> Tensor:
        j = jet(fn, inputs, operator={(1, 1): 1.0, (0, 0): -self.options.c**2}, fast=self.fast)
        return j.op

    def term_residual(self, fn: Field, batch: Batch, term: str) -> Tensor:
        if term == "velocity":
            return jet(fn, batch.inputs, first=(1,), fast=self.fast).d(1) - batch.targets
        return super().term_residual(fn, batch, term)

    def term_loss(self, fn: Field, batch: Batch, term: str) -> Tensor:
        """The paper's boundary loss: one mean per edge, summed (``reduction: paper``)."""
        if term == "boundary" and self.options.reduction == "paper":
            return sum_of_part_means(self.term_residual(fn, batch, term).square(), len(EDGES))
        return super().term_loss(fn, batch, term)

    def exact(self, inputs: Tensor) -> Tensor:
        c, a = self.options.c, self.options.a
        x, t = inputs[:, :1], inputs[:, 1:2]
        return (torch.sin(math.pi * x) * torch.cos(c * math.pi * t)
                + a * torch.sin(2 * c * math.pi * x) * torch.cos(4 * c * math.pi * t))

    def test_grid(self) -> np.ndarray:
        axis = np.linspace(0.0, 1.0, self.options.grid)
        xx, tt = np.meshgrid(axis, axis)
        return np.stack([xx.ravel(), tt.ravel()], axis=1)

    def compute_reference(self) -> tuple[np.ndarray, np.ndarray]:
        inputs = self.test_grid()
        with torch.no_grad():
            return inputs, self.exact(torch.from_numpy(inputs)).numpy()

    def reference_key(self) -> str:
        o = self.options
        return f"{o.c!r}:{o.a!r}:{o.grid}"
