"""Viscous Burgers equation in 1-D (Raissi et al. 2019; the ConFIG paper's first problem).

u_t + u u_x − ν u_xx = 0 on x ∈ [−1, 1], t ∈ [0, 1], ν = 0.01/π; u(x, 0) = −sin(πx), u(±1, t) = 0.

Exact solution by the Cole–Hopf transform (u = −2ν φ_x/φ, φ solving the heat equation):

    u(x, t) = −∫ sin(π(x − η)) f(x − η) e^{−η²/4νt} dη / ∫ f(x − η) e^{−η²/4νt} dη,
    f(y) = exp(−cos(πy) / 2πν).

With η = 2√(νt) z both integrals carry the weight e^{−z²}; their ratio is a softmax over a uniform
z-grid (the trapezoid rule, which converges exponentially for this analytic, decaying integrand).

Inverse version (``inverse.enabled``): ν is unknown and trained from observations of this solution
(see :class:`~problems.base.InverseOptions`; ``nu`` stays the truth). The observations are a loss
term ``data`` that joins the others as in :attr:`Burgers.inverse_groupings`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from problems.base import Batch, Field, InverseOptions, Problem, ProblemOptions, latin_hypercube
from problems.derivatives import jet


@dataclass
class BurgersOptions(ProblemOptions):
    nu: float = 0.01 / math.pi
    quadrature_nodes: int = 4001
    quadrature_halfwidth: float = 12.0
    inverse: InverseOptions = field(default_factory=lambda: InverseOptions(initial=0.05))
    """ν unknown, trained from 0.05 (16 times the truth 0.01/π) by default."""


class Burgers(Problem):
    Options = BurgersOptions
    input_names = ("x", "t")
    field_names = ("u",)
    terms = ("residual", "boundary", "initial")
    groupings = {2: (("residual",), ("boundary", "initial")), 3: (("residual",), ("boundary",), ("initial",))}
    lower = (-1.0, 0.0)
    upper = (1.0, 1.0)
    paper_file = "burgers_simulation_data.npy"
    unknown = "nu"
    inverse_groupings = {2: (("residual",), ("boundary", "initial", "data")),
                         3: (("residual",), ("boundary", "initial"), ("data",)),
                         4: (("residual",), ("boundary",), ("initial",), ("data",))}
    """The observations join the known conditions in the 2-loss grouping (one mean over the
    concatenated points under ``reduction: paper``); with 3 losses they are a loss of their own,
    the one that decides ν, next to the PDE and the known conditions; 4 separates every term."""

    def sample_term(self, term: str, n: int, generator: torch.Generator) -> Batch:
        lo, hi = self.box_lower, self.box_upper
        if term == "residual":
            return Batch(latin_hypercube(n, lo, hi, generator))
        if term == "boundary":
            t = latin_hypercube(n, lo[1:], hi[1:], generator)
            x = torch.where(torch.arange(n, device=self.device) < n // 2, lo[0], hi[0]).to(self.dtype)
            inputs = torch.cat([x[:, None], t], dim=1)
        elif term == "initial":
            x = latin_hypercube(n, lo[:1], hi[:1], generator)
            inputs = torch.cat([x, torch.zeros_like(x)], dim=1)
        else:
            raise KeyError(term)
        return Batch(inputs, self.target(term, inputs))

    def target(self, term: str, inputs: Tensor) -> Tensor | None:
        """u = 0 on the boundary, u = −sin(πx) at t = 0."""
        if term == "boundary":
            return torch.zeros_like(inputs[:, :1])
        return -torch.sin(math.pi * inputs[:, :1]) if term == "initial" else None

    def pde_residual(self, fn: Field, inputs: Tensor) -> Tensor:
        nu = self.coefficient()
        if isinstance(nu, Tensor):  # inverse: ν is trained, so u_xx is needed on its own
            j = jet(fn, inputs, first=(0, 1), second=(0,), fast=self.fast)
            return j.d(1) + j.value * j.d(0) - nu * j.dd(0)
        # u_t − ν u_xx as one linear operator: the fast path carries it as a single stream
        j = jet(fn, inputs, first=(0,), operator={(1,): 1.0, (0, 0): -nu}, fast=self.fast)
        return j.op + j.value * j.d(0)

    def exact(self, inputs: Tensor) -> Tensor:
        """Cole–Hopf solution at inputs [N, 2] = (x, t), differentiable in both."""
        nu = self.options.nu
        x, t = inputs[:, :1], inputs[:, 1:]
        z = torch.linspace(-self.options.quadrature_halfwidth, self.options.quadrature_halfwidth,
                           self.options.quadrature_nodes, dtype=inputs.dtype, device=inputs.device)
        y = x - 2.0 * torch.sqrt(nu * t) * z  # x − η
        log_weight = -torch.cos(math.pi * y) / (2.0 * math.pi * nu) - z.square()
        return -(torch.softmax(log_weight, dim=1) * torch.sin(math.pi * y)).sum(dim=1, keepdim=True)

    def test_grid(self) -> np.ndarray:
        """The paper's grid: t = linspace(0, 1, 100) (rows) × the 256 cell centres of [−1, 1] (columns)."""
        t = np.linspace(0.0, 1.0, 100)
        x = -1.0 + (np.arange(256) + 0.5) * 2.0 / 256
        tt, xx = np.meshgrid(t, x, indexing="ij")
        return np.stack([xx.ravel(), tt.ravel()], axis=1)

    def compute_reference(self) -> tuple[np.ndarray, np.ndarray]:
        inputs = self.test_grid()
        with torch.no_grad():
            chunks = [self.exact(chunk) for chunk in torch.from_numpy(inputs).split(2048)]
        return inputs, torch.cat(chunks).numpy()

    def read_paper_file(self, path) -> np.ndarray:
        """The paper's simulation, float32 [100 t, 256 x], on the same grid as :meth:`test_grid`."""
        return np.load(path).astype(np.float64).reshape(-1, 1)

    def reference_key(self) -> str:
        o = self.options
        return f"{o.nu!r}:{o.quadrature_nodes}:{o.quadrature_halfwidth!r}"
