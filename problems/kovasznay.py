"""Kovasznay flow: steady 2-D incompressible Navier–Stokes (the ConFIG paper's third problem).

On (x, y) ∈ [−0.5, 1] × [−0.5, 1.5] with ν = 1/Re (Re = 40, as in the paper's code), the fields
(u, v, p) satisfy three equations, the three residual columns:

    u u_x + v u_y + p_x − ν (u_xx + u_yy) = 0      (momentum in x)
    u v_x + v v_y + p_y − ν (v_xx + v_yy) = 0      (momentum in y)
    u_x + v_y = 0                                  (continuity)

Closed form (Kovasznay 1948), with λ = Re/2 − √(Re²/4 + 4π²):

    u = 1 − e^{λx} cos 2πy,    v = (λ/2π) e^{λx} sin 2πy,    p = ½ (1 − e^{2λx}).

Dirichlet data on u, v and p along the whole boundary; there is no initial condition, so the
problem offers two losses only: residual | boundary. Test grid (the paper's): 27 (x) × 37 (y)
equally spaced points including the corners, 999 points; the error is the mean over u, v and p.

Inverse version (``inverse.enabled``): Re is unknown and trained from observations of (u, v, p)
(see :class:`~problems.base.InverseOptions`; ``re`` stays the truth), a loss term ``data`` grouped
as in :attr:`Kovasznay.inverse_groupings`. Being steady, Kovasznay has no causal training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from problems.base import Batch, Field, FieldSlice, InverseOptions, Problem, ProblemOptions, latin_hypercube
from problems.derivatives import jet


@dataclass
class KovasznayOptions(ProblemOptions):
    re: float = 40.0
    """Reynolds number; ν = 1/Re."""
    inverse: InverseOptions = field(default_factory=lambda: InverseOptions(initial=20.0))
    """Re unknown, trained from 20 (half the truth) by default."""


def perimeter_points(s: Tensor, lower: Tensor, upper: Tensor) -> Tensor:
    """Map arc length s ∈ [0, perimeter) to points on the rectangle's boundary, walking
    counter-clockwise from the lower-left corner: bottom, right, top, left edge."""
    (x0, y0), (x1, y1) = lower.tolist(), upper.tolist()
    width, height = x1 - x0, y1 - y0
    s = s.reshape(-1)
    edges = [  # (start of the edge in arc length, x(r), y(r)) with r the distance along the edge
        (0.0, lambda r: x0 + r, lambda r: torch.full_like(r, y0)),
        (width, lambda r: torch.full_like(r, x1), lambda r: y0 + r),
        (width + height, lambda r: x1 - r, lambda r: torch.full_like(r, y1)),
        (2 * width + height, lambda r: torch.full_like(r, x0), lambda r: y1 - r),
    ]
    x, y = torch.empty_like(s), torch.empty_like(s)
    for k, (start, fx, fy) in enumerate(edges):
        end = edges[k + 1][0] if k + 1 < len(edges) else math.inf
        on = (s >= start) & (s < end)
        r = s[on] - start
        x[on], y[on] = fx(r), fy(r)
    return torch.stack([x, y], dim=1)


class Kovasznay(Problem):
    Options = KovasznayOptions
    input_names = ("x", "y")
    field_names = ("u", "v", "p")
    terms = ("residual", "boundary")
    groupings = {2: (("residual",), ("boundary",))}
    lower = (-0.5, -0.5)
    upper = (1.0, 1.5)
    unknown = "re"
    inverse_groupings = {2: (("residual",), ("boundary", "data")), 3: (("residual",), ("boundary",), ("data",))}
    """The observations join the boundary data in the 2-loss grouping, or are a loss of their own."""

    @property
    def nu(self) -> float | Tensor:
        """ν = 1/Re, with the trained Re in an inverse run."""
        return 1.0 / self.coefficient()

    @property
    def wave(self) -> float:
        """λ = Re/2 − √(Re²/4 + 4π²)."""
        re = self.options.re
        return re / 2 - math.sqrt(re**2 / 4 + 4 * math.pi**2)

    def sample_term(self, term: str, n: int, generator: torch.Generator) -> Batch:
        """Residual: Latin hypercube in the rectangle. Boundary: stratified along the perimeter
        (so each edge gets points in proportion to its length), with the exact (u, v, p)."""
        lo, hi = self.box_lower, self.box_upper
        if term == "residual":
            return Batch(latin_hypercube(n, lo, hi, generator))
        if term == "boundary":
            perimeter = 2 * float((hi - lo).sum())
            s = latin_hypercube(n, lo.new_zeros(1), lo.new_full((1,), perimeter), generator)
            inputs = perimeter_points(s, lo, hi)
            return Batch(inputs, self.exact(inputs))
        raise KeyError(term)

    def pde_residual(self, fn: Field, inputs: Tensor) -> Tensor:
        # −ν Δ as one linear operator: the fast path carries it as a single stream (−Δ, times a
        # trained ν afterwards, in an inverse run)
        nu = self.nu
        scale = -nu if isinstance(nu, float) else -1.0
        j = jet(fn, inputs, first=(0, 1), operator={(0, 0): scale, (1, 1): scale}, fast=self.fast)
        (u, v, _), (u_x, v_x, p_x), (u_y, v_y, p_y) = (t.split(1, dim=1) for t in (j.value, j.d(0), j.d(1)))
        viscous_u, viscous_v, _ = (j.op if isinstance(nu, float) else nu * j.op).split(1, dim=1)
        momentum_x = u * u_x + v * u_y + p_x + viscous_u
        momentum_y = u * v_x + v * v_y + p_y + viscous_v
        return torch.cat([momentum_x, momentum_y, u_x + v_y], dim=1)

    def exact(self, inputs: Tensor) -> Tensor:
        """(u, v, p) of Kovasznay's solution at inputs [N, 2] = (x, y)."""
        lam, x, y = self.wave, inputs[:, :1], inputs[:, 1:]
        decay = torch.exp(lam * x)
        u = 1 - decay * torch.cos(2 * math.pi * y)
        v = lam / (2 * math.pi) * decay * torch.sin(2 * math.pi * y)
        p = 0.5 * (1 - decay.square())
        return torch.cat([u, v, p], dim=1)

    def test_grid(self) -> np.ndarray:
        """27 × 37 points: as many as fit in about 1 000 with spacing equal in x and y (the paper's
        n_x = ⌊√(1001 · 1.5/2)⌋, n_y = ⌊1001/n_x⌋), rows of constant y."""
        xx, yy = np.meshgrid(np.linspace(self.lower[0], self.upper[0], 27),
                             np.linspace(self.lower[1], self.upper[1], 37))
        return np.stack([xx.ravel(), yy.ravel()], axis=1)

    def compute_reference(self) -> tuple[np.ndarray, np.ndarray]:
        inputs = self.test_grid()
        with torch.no_grad():
            return inputs, self.exact(torch.from_numpy(inputs)).numpy()

    def reference_key(self) -> str:
        return repr(self.options.re)

    def plot_slice(self, resolution: int = 100) -> FieldSlice:
        """The whole rectangle on a finer grid than the test grid, with the exact solution there."""
        x = np.linspace(self.lower[0], self.upper[0], resolution)
        y = np.linspace(self.lower[1], self.upper[1], round(resolution * 4 / 3))
        yy, xx = np.meshgrid(y, x, indexing="ij")
        inputs = np.stack([xx.ravel(), yy.ravel()], axis=1)
        with torch.no_grad():
            fields = self.exact(torch.from_numpy(inputs)).numpy()
        return FieldSlice(inputs, fields, xx.shape, (0, 1))
