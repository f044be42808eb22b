"""Nonlinear Schrödinger equation in 1-D (Raissi et al. 2019; the ConFIG paper's second problem).

i h_t + ½ h_xx + |h|² h = 0 on x ∈ [−5, 5], t ∈ [0, π/2], h(x, 0) = 2 sech x, h and h_x periodic.

With h = u + i v the equation splits into a real and an imaginary part, the two residuals:

    f_u = u_t + ½ v_xx + (u² + v²) v = 0,        f_v = v_t − ½ u_xx − (u² + v²) u = 0.

The boundary term ties the two ends of the periodic domain together: at each sampled time,
u(−5) − u(5) and v(−5) − v(5) (option ``periodic: value``, the paper's code: it computes the h_x
part too but leaves it out of every loss), or also u_x(−5) − u_x(5) and v_x(−5) − v_x(5)
(``periodic: value_and_derivative``, as the problem states periodic h and h_x). As in the paper's
code, the boundary loss is the mean over the time pairs summed over these columns, the initial
loss the mean over all entries (points × (u, v)), and the 2-loss group boundary + initial the sum
of the two (see :mod:`problems.base` for ``reduction``).

Reference: there is no closed form for this initial value (a second-order soliton that breathes
with period π/2), so it is solved by the split-step Fourier method in float64 on the periodic grid
of the paper's data file (256 points x_j = −5 + 10 j/256, 201 times in [0, π/2]). Writing the
equation as h_t = A h + B(h) h with A = (i/2) ∂_xx and B(h) = i|h|²:

* the linear flow is exact in Fourier space: ĥ_k ← exp(−i k² τ/2) ĥ_k;
* the nonlinear flow keeps |h| fixed, so it is exact too: h ← h exp(i|h|² τ);
* Strang's splitting S(τ) = N(τ/2) L(τ) N(τ/2) is second order, and the triple jump
  S(w₁τ) S(w₀τ) S(w₁τ), w₁ = 1/(2 − 2^{1/3}), w₀ = 1 − 2w₁, is fourth order (Yoshida 1990).

The test error is the paper's: MSE(u) + MSE(v) on that grid, against the paper's file ``NLS.mat``
(``test_reference: paper``) or this solution (``exact``); MSE(|h|) is reported beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.io
import torch
from torch import Tensor

from problems.base import Batch, Field, Problem, ProblemOptions, check_choice, latin_hypercube
from problems.derivatives import jet

X_START, X_END, T_END = -5.0, 5.0, math.pi / 2


@dataclass
class SchrodingerOptions(ProblemOptions):
    grid_points: int = 256
    """Points of the periodic x grid (the reference solver's Fourier modes, and the test grid)."""
    time_levels: int = 201
    """Times of the test grid, linspace(0, π/2, time_levels)."""
    substeps: int = 20
    """Fourth-order split steps between two consecutive times of the test grid."""
    periodic: str = "value"
    """What the boundary term makes periodic: ``value`` (h, the paper's code) or
    ``value_and_derivative`` (h and h_x)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("periodic", self.periodic, ("value", "value_and_derivative"))


def initial_value(x: Tensor) -> Tensor:
    """h(x, 0) = 2 sech x as (u, v) = (2 sech x, 0), shape [N, 2]."""
    return torch.cat([2.0 / torch.cosh(x), torch.zeros_like(x)], dim=1)


def split_step(h: np.ndarray, wavenumbers: np.ndarray, tau: float, steps: int) -> np.ndarray:
    """Advance the periodic field h by ``steps`` fourth-order split steps of length ``tau``."""
    w1 = 1.0 / (2.0 - 2.0 ** (1.0 / 3.0))
    w0 = 1.0 - 2.0 * w1

    def strang(h: np.ndarray, dt: float) -> np.ndarray:
        h = h * np.exp(0.5j * dt * np.abs(h) ** 2)
        h = np.fft.ifft(np.exp(-0.5j * dt * wavenumbers**2) * np.fft.fft(h))
        return h * np.exp(0.5j * dt * np.abs(h) ** 2)

    for _ in range(steps):
        h = strang(strang(strang(h, w1 * tau), w0 * tau), w1 * tau)
    return h


def solve(grid_points: int, times: np.ndarray, substeps: int) -> tuple[np.ndarray, np.ndarray]:
    """(x [grid_points], h [len(times), grid_points] complex) from h(x, 0) = 2 sech x."""
    x = X_START + (X_END - X_START) * np.arange(grid_points) / grid_points
    wavenumbers = 2.0 * np.pi * np.fft.fftfreq(grid_points, d=(X_END - X_START) / grid_points)
    h = (2.0 / np.cosh(x)).astype(np.complex128)
    frames = [h]
    for dt in np.diff(times):
        h = split_step(h, wavenumbers, dt / substeps, substeps)
        frames.append(h)
    return x, np.stack(frames)


class Schrodinger(Problem):
    Options = SchrodingerOptions
    input_names = ("x", "t")
    field_names = ("u", "v")
    terms = ("residual", "boundary", "initial")
    groupings = {2: (("residual",), ("boundary", "initial")), 3: (("residual",), ("boundary",), ("initial",))}
    lower = (X_START, 0.0)
    upper = (X_END, T_END)
    group_reduction = "sum"
    term_reductions = {"boundary": "columns"}
    paper_file = "schrodinger_NLS.mat"

    def sample_term(self, term: str, n: int, generator: torch.Generator) -> Batch:
        """Residual: Latin hypercube in (x, t). Boundary: n/2 times, each at x = −5 (first half of
        the rows) and at x = 5 (second half, same times). Initial: n points at t = 0."""
        lo, hi = self.box_lower, self.box_upper
        if term == "residual":
            return Batch(latin_hypercube(n, lo, hi, generator))
        if term == "boundary":
            t = latin_hypercube(max(n // 2, 1), lo[1:], hi[1:], generator)
            ends = [torch.cat([torch.full_like(t, float(x)), t], dim=1) for x in (lo[0], hi[0])]
            return Batch(torch.cat(ends))
        if term == "initial":
            x = latin_hypercube(n, lo[:1], hi[:1], generator)
            inputs = torch.cat([x, torch.zeros_like(x)], dim=1)
            return Batch(inputs, self.target(term, inputs))
        raise KeyError(term)

    def target(self, term: str, inputs: Tensor) -> Tensor | None:
        """h(x, 0) = 2 sech x at t = 0; the other terms have no data."""
        return initial_value(inputs[:, :1]) if term == "initial" else None

    def term_residual(self, fn: Field, batch: Batch, term: str) -> Tensor:
        """Boundary (periodicity): h(−5, t) − h(5, t) as (u, v), and h_x(−5, t) − h_x(5, t) with
        ``periodic: value_and_derivative``; the other terms as usual."""
        if term != "boundary":
            return super().term_residual(fn, batch, term)
        if self.options.periodic == "value":
            left, right = fn(batch.inputs).chunk(2)
            return left - right
        j = jet(fn, batch.inputs, first=(0,), fast=self.fast)
        left, right = torch.cat([j.value, j.d(0)], dim=1).chunk(2)
        return left - right

    def pde_residual(self, fn: Field, inputs: Tensor) -> Tensor:
        """[f_u, f_v] (module docstring): imaginary and real part of i h_t + ½ h_xx + |h|² h."""
        j = jet(fn, inputs, first=(1,), second=(0,), fast=self.fast)
        u, v = j.value[:, :1], j.value[:, 1:]
        u_t, v_t = j.d(1)[:, :1], j.d(1)[:, 1:]
        u_xx, v_xx = j.dd(0)[:, :1], j.dd(0)[:, 1:]
        modulus2 = u.square() + v.square()
        return torch.cat([u_t + 0.5 * v_xx + modulus2 * v, v_t - 0.5 * u_xx - modulus2 * u], dim=1)

    def times(self) -> np.ndarray:
        return np.linspace(0.0, T_END, self.options.time_levels)

    def compute_reference(self) -> tuple[np.ndarray, np.ndarray]:
        """Split-step Fourier solution on the grid t (rows) × x (columns), flattened row-major."""
        o = self.options
        times = self.times()
        x, h = solve(o.grid_points, times, o.substeps)
        tt, xx = np.meshgrid(times, x, indexing="ij")
        inputs = np.stack([xx.ravel(), tt.ravel()], axis=1)
        return inputs, np.stack([h.real.ravel(), h.imag.ravel()], axis=1)

    def read_paper_file(self, path) -> np.ndarray:
        """``uu`` [256 x, 201 t] of the paper's NLS.mat as (u, v) on the grid of :meth:`compute_reference`
        (the file's x and t equal ours to 4e-16)."""
        h = scipy.io.loadmat(path)["uu"].T.ravel()
        return np.stack([h.real, h.imag], axis=1)

    def reference_key(self) -> str:
        o = self.options
        return f"{o.grid_points}:{o.time_levels}:{o.substeps}"

    def derived_fields(self, values: Tensor) -> dict[str, Tensor]:
        """|h| = √(u² + v²)."""
        return {"h": values[:, :2].square().sum(dim=1).sqrt()}

    def test_mse(self, per_field: dict[str, float]) -> float:
        """The paper's metric: MSE(u) + MSE(v)."""
        return per_field["mse_u"] + per_field["mse_v"]
