"""3-D Beltrami flow: unsteady incompressible Navier–Stokes (the ConFIG paper's fourth problem).

On (x, y, z, t) ∈ [−1, 1]³ × [0, 1] the fields (u, v, w, p) satisfy four equations, the four
residual columns (ν = 1, i.e. Re = 1, as in the paper's code):

    u_t + u u_x + v u_y + w u_z + p_x − ν Δu = 0      (and likewise for v with p_y, w with p_z)
    u_x + v_y + w_z = 0

Closed form (Ethier & Steinman 1994) with a = d = 1; the velocity decays as e^{−νd²t}:

    u = −a [e^{ax} sin(ay + dz) + e^{az} cos(ax + dy)] e^{−νd²t}
    v = −a [e^{ay} sin(az + dx) + e^{ax} cos(ay + dz)] e^{−νd²t}
    w = −a [e^{az} sin(ax + dy) + e^{ay} cos(az + dx)] e^{−νd²t}
    p = −(a²/2) [e^{2ax} + e^{2ay} + e^{2az}
                 + 2 sin(ax + dy) cos(az + dx) e^{a(y+z)}
                 + 2 sin(ay + dz) cos(ax + dy) e^{a(z+x)}
                 + 2 sin(az + dx) cos(ay + dz) e^{a(x+y)}] e^{−2νd²t}

Why it solves the equations: the velocity is a Beltrami field, ∇×u = d u, so (u·∇)u =
∇(|u|²/2) − u × (∇×u) = ∇(|u|²/2); each component has Δu = −d² u, so u_t = νΔu; and the bracket
above is |u|² e^{2νd²t}/a², i.e. p = −|u|²/2 cancels the nonlinear term. The test suite checks
that this closed form zeroes every residual column, also for a ≠ d.

Boundary data on u, v, w, p for t ∈ [0, 1]: on the twelve edges of the cube (``boundary_points:
edges``, the paper's sampler: two coordinates at ±1) or on its six faces (``faces``, the whole
boundary of the domain); initial data at t = 0. Test grid (the paper's): x, y on 7 and z on 8 equally spaced points of [−1, 1] at
t ∈ {0, ¼, ½, ¾, 1}, 1 960 points; the error is the mean over u, v, w and p.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from problems.base import Batch, Field, FieldSlice, Problem, ProblemOptions, check_choice, latin_hypercube
from problems.derivatives import jet


@dataclass
class BeltramiOptions(ProblemOptions):
    a: float = 1.0
    d: float = 1.0
    nu: float = 1.0
    boundary_points: str = "edges"
    """Where boundary points lie: ``edges`` (the paper's sampler) or ``faces``."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("boundary_points", self.boundary_points, ("edges", "faces"))


def edge_layout(n: int, lower: Tensor, upper: Tensor) -> tuple[Tensor, Tensor]:
    """The paper's split of n boundary points over the cube's edges: (free axis [n], fixed [n, 3]).

    The edges along x, y and z get ⌊n·L_x/ΣL⌋, ⌊n·L_y/ΣL⌋ and the rest of the points. Along one
    axis, of the two other axes (in order x, y, z) the first is at its lower end for the first
    quarter of the points, upper for the next half, lower for the rest, and the second at its
    lower end for the first half, upper for the rest, so each of the four parallel edges gets
    about a quarter. ``fixed`` holds the coordinates of the two fixed axes (the free one is 0).
    """
    lengths = (upper - lower).tolist()
    counts = [int(n * lengths[0] / sum(lengths)), int(n * lengths[1] / sum(lengths))]
    counts.append(n - sum(counts))
    free, fixed = [], []
    for axis, m in enumerate(counts):
        first, second = [a for a in range(3) if a != axis]
        rows = torch.zeros(m, 3, dtype=lower.dtype, device=lower.device)
        quarter = torch.arange(m, device=lower.device)
        rows[:, first] = torch.where((quarter >= m // 4) & (quarter < m // 4 + m // 2), upper[first], lower[first])
        rows[:, second] = torch.where(quarter >= m // 2, upper[second], lower[second])
        free.append(torch.full((m,), axis, device=lower.device))
        fixed.append(rows)
    return torch.cat(free), torch.cat(fixed)


class Beltrami(Problem):
    Options = BeltramiOptions
    input_names = ("x", "y", "z", "t")
    field_names = ("u", "v", "w", "p")
    terms = ("residual", "boundary", "initial")
    groupings = {2: (("residual",), ("boundary", "initial")), 3: (("residual",), ("boundary",), ("initial",))}
    lower = (-1.0, -1.0, -1.0, 0.0)
    upper = (1.0, 1.0, 1.0, 1.0)

    def sample_term(self, term: str, n: int, generator: torch.Generator) -> Batch:
        """Residual: Latin hypercube in space-time. Boundary, ``edges``: :func:`edge_layout`, the
        free coordinate and t by Latin hypercube; ``faces``: Latin hypercube in space-time, then
        point k is pushed onto face k mod 6 (the six faces have equal areas, so equal shares).
        Initial: Latin hypercube in space at t = 0. Data terms carry the exact (u, v, w, p)."""
        lo, hi = self.box_lower, self.box_upper
        if term == "residual":
            return Batch(latin_hypercube(n, lo, hi, generator))
        if term == "boundary" and self.options.boundary_points == "edges":
            inputs = latin_hypercube(n, lo, hi, generator)
            free, fixed = edge_layout(n, lo[:3], hi[:3])
            on_edge = torch.where(torch.nn.functional.one_hot(free, 3).bool(), inputs[:, :3], fixed)
            inputs = torch.cat([on_edge, inputs[:, 3:]], dim=1)
            return Batch(inputs, self.exact(inputs))
        if term == "boundary":
            inputs = latin_hypercube(n, lo, hi, generator)
            face = torch.arange(n, device=self.device) % 6
            axis, upper_side = face % 3, face >= 3
            rows = torch.arange(n, device=self.device)
            inputs[rows, axis] = torch.where(upper_side, hi[axis], lo[axis])
            return Batch(inputs, self.exact(inputs))
        if term == "initial":
            space = latin_hypercube(n, lo[:3], hi[:3], generator)
            inputs = torch.cat([space, torch.zeros_like(space[:, :1])], dim=1)
            return Batch(inputs, self.exact(inputs))
        raise KeyError(term)

    def pde_residual(self, fn: Field, inputs: Tensor) -> Tensor:
        # ∂_t − ν Δ as one linear operator: the fast path carries it as a single stream
        transport = {(3,): 1.0, **{(i, i): -self.options.nu for i in range(3)}}
        j = jet(fn, inputs, first=(0, 1, 2), operator=transport, fast=self.fast)
        velocity, p_grad = j.value[:, :3], [j.d(i)[:, 3:] for i in range(3)]
        grad = [j.d(i)[:, :3] for i in range(3)]  # grad[i][:, c] = ∂(velocity_c)/∂x_i
        momentum = [
            j.op[:, c:c + 1]
            + sum(velocity[:, i:i + 1] * grad[i][:, c:c + 1] for i in range(3))
            + p_grad[c]
            for c in range(3)
        ]
        continuity = grad[0][:, :1] + grad[1][:, 1:2] + grad[2][:, 2:3]
        return torch.cat([*momentum, continuity], dim=1)

    def exact(self, inputs: Tensor) -> Tensor:
        """(u, v, w, p) of the Ethier–Steinman solution at inputs [N, 4] = (x, y, z, t)."""
        a, d, nu = self.options.a, self.options.d, self.options.nu
        x, y, z, t = inputs.split(1, dim=1)
        decay = torch.exp(-nu * d**2 * t)
        u = -a * (torch.exp(a * x) * torch.sin(a * y + d * z) + torch.exp(a * z) * torch.cos(a * x + d * y))
        v = -a * (torch.exp(a * y) * torch.sin(a * z + d * x) + torch.exp(a * x) * torch.cos(a * y + d * z))
        w = -a * (torch.exp(a * z) * torch.sin(a * x + d * y) + torch.exp(a * y) * torch.cos(a * z + d * x))
        p = -0.5 * a**2 * (
            torch.exp(2 * a * x) + torch.exp(2 * a * y) + torch.exp(2 * a * z)
            + 2 * torch.sin(a * x + d * y) * torch.cos(a * z + d * x) * torch.exp(a * (y + z))
            + 2 * torch.sin(a * y + d * z) * torch.cos(a * x + d * y) * torch.exp(a * (z + x))
            + 2 * torch.sin(a * z + d * x) * torch.cos(a * y + d * z) * torch.exp(a * (x + y))
        )
        return torch.cat([u * decay, v * decay, w * decay, p * decay.square()], dim=1)

    def test_grid(self) -> np.ndarray:
        """x, y: 7 points, z: 8 points of [−1, 1] (the paper's split of ~400 points per time level),
        at 5 times linspace(0, 1, 5): 1 960 points, time-major."""
        x, y = np.linspace(-1, 1, 7), np.linspace(-1, 1, 7)
        z, t = np.linspace(-1, 1, 8), np.linspace(0, 1, 5)
        tt, xx, yy, zz = np.meshgrid(t, x, y, z, indexing="ij")
        return np.stack([xx.ravel(), yy.ravel(), zz.ravel(), tt.ravel()], axis=1)

    def compute_reference(self) -> tuple[np.ndarray, np.ndarray]:
        inputs = self.test_grid()
        with torch.no_grad():
            return inputs, self.exact(torch.from_numpy(inputs)).numpy()

    def reference_key(self) -> str:
        o = self.options
        return f"{o.a!r}:{o.d!r}:{o.nu!r}"

    def plot_slice(self, resolution: int = 64) -> FieldSlice:
        """The plane z = 0 at t = 1 on a resolution² grid of (x, y), with the exact solution there."""
        x = np.linspace(-1, 1, resolution)
        yy, xx = np.meshgrid(x, x, indexing="ij")
        inputs = np.stack([xx.ravel(), yy.ravel(), np.zeros(xx.size), np.ones(xx.size)], axis=1)
        with torch.no_grad():
            fields = self.exact(torch.from_numpy(inputs)).numpy()
        return FieldSlice(inputs, fields, (resolution, resolution), (0, 1), "z = 0, t = 1")
