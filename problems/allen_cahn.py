"""Allen–Cahn equation in 1-D (Wang, Sankaran, Perdikaris, "Respecting causality is all you need
for training physics-informed neural networks", CMAME 421 (2024), arXiv 2203.07404, Sec. 6.1): the
causal training paper's home problem.

    u_t − ε u_xx + 5u³ − 5u = 0  on x ∈ [−1, 1] (periodic), t ∈ [0, 1],  ε = 10⁻⁴,
    u(x, 0) = x² cos(πx).

Terms: ``residual``; ``initial``, u − u₀ at t = 0. The paper makes the network exactly periodic in
x (``network.periodic: {x: 2.0}``, this problem's default) and trains these two losses. For a network
without that encoding, ``periodic_loss: true`` adds the term ``boundary``, the periodic pairing
(u(−1, t) − u(1, t), u_x(−1, t) − u_x(1, t)) at equal times, as a third loss (``n_losses: 3``).

Reference: there is no closed form, so it is computed by a Fourier spectral method in x with the
fourth-order exponential time differencing Runge–Kutta scheme ETDRK4 (Cox & Matthews 2002) in t, its
coefficients by contour integrals (Kassam & Trefethen 2005), in float64. Writing û for the Fourier
coefficients, û_t = L û + N(û) with the diagonal L = 5 − ε k² and N(û) = −5 F(u³). The grid is the
public data file's (jaxpi ``examples/allen_cahn/data/allen_cahn.mat``, made with Chebfun's ``spin``):
x_j = −1 + 2j/511 (j = 0 … 511, the last point repeating the first) and t = 0, 0.005, …, 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from problems.base import Batch, Field, Problem, ProblemOptions, latin_hypercube
from problems.derivatives import jet


@dataclass
class AllenCahnOptions(ProblemOptions):
    epsilon: float = 1e-4
    """Diffusion coefficient ε."""
    modes: int = 511
    """Periodic grid points of the solver (odd: no Nyquist mode), the test grid's x spacing 2/modes."""
    time_levels: int = 201
    """Times of the test grid, linspace(0, 1, time_levels)."""
    substeps: int = 50
    """ETDRK4 steps between two consecutive times of the test grid (50: Δt = 10⁻⁴)."""
    periodic_loss: bool = False
    """Add the term ``boundary`` (u and u_x equal at x = ±1) as a third loss: for a network that is
    not periodic by its encoding (``network.periodic={}``)."""


def initial_value(x):
    """u₀ = x² cos(πx) (numpy or torch)."""
    cos = torch.cos if isinstance(x, Tensor) else np.cos
    return x**2 * cos(math.pi * x)


def etdrk4_coefficients(linear: np.ndarray, h: float, contour_points: int = 64) -> tuple[np.ndarray, ...]:
    """(e^{hL}, e^{hL/2}, Q, f₁, f₂, f₃) of ETDRK4 for the diagonal linear part ``linear`` (Kassam &
    Trefethen 2005, Eq. 2.5), each φ-function evaluated as the mean over a circle of radius 1 around
    hL, which avoids the cancellation of the formulas near hL = 0."""
    roots = np.exp(1j * np.pi * (np.arange(1, contour_points + 1) - 0.5) / contour_points)
    z = h * linear[:, None] + roots[None, :]
    ez = np.exp(z)

    def mean(values: np.ndarray) -> np.ndarray:
        return h * np.real(values.mean(axis=1))

    q = mean((np.exp(z / 2) - 1) / z)
    f1 = mean((-4 - z + ez * (4 - 3 * z + z**2)) / z**3)
    f2 = mean((2 + z + ez * (z - 2)) / z**3)
    f3 = mean((-4 - 3 * z - z**2 + ez * (4 - z)) / z**3)
    return np.exp(h * linear), np.exp(h * linear / 2), q, f1, f2, f3


def solve_allen_cahn(epsilon: float, modes: int, times: np.ndarray, substeps: int) -> np.ndarray:
    """u [len(times), modes] on x_j = −1 + 2j/modes at equally spaced ``times`` (from 0), ETDRK4
    with ``substeps`` steps between outputs."""
    x = -1.0 + 2.0 * np.arange(modes) / modes
    k = np.pi * np.fft.fftfreq(modes, d=1.0 / modes)  # period 2: wavenumbers π n
    linear = 5.0 - epsilon * k**2
    h = (times[1] - times[0]) / substeps
    E, E2, Q, f1, f2, f3 = etdrk4_coefficients(linear, h)

    def nonlinear(v: np.ndarray) -> np.ndarray:
        return -5.0 * np.fft.fft(np.real(np.fft.ifft(v)) ** 3)

    v = np.fft.fft(initial_value(x))
    out = [np.real(np.fft.ifft(v))]
    for _ in range(len(times) - 1):
        for _ in range(substeps):
            Nv = nonlinear(v)
            a = E2 * v + Q * Nv
            Na = nonlinear(a)
            b = E2 * v + Q * Na
            Nb = nonlinear(b)
            c = E2 * a + Q * (2 * Nb - Nv)
            Nc = nonlinear(c)
            v = E * v + f1 * Nv + 2 * f2 * (Na + Nb) + f3 * Nc
        out.append(np.real(np.fft.ifft(v)))
    return np.array(out)


class AllenCahn(Problem):
    Options = AllenCahnOptions
    input_names = ("x", "t")
    field_names = ("u",)
    terms = ("residual", "initial")
    groupings = {2: (("residual",), ("initial",))}
    lower = (-1.0, 0.0)
    upper = (1.0, 1.0)
    term_reductions = {"boundary": "columns"}
    paper_file = "allen_cahn.mat"

    def __init__(self, options: AllenCahnOptions, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        if options.periodic_loss:  # before the base class checks every term has a point count
            self.terms = ("residual", "initial", "boundary")
            self.groupings = {3: (("residual",), ("initial",), ("boundary",))}
        super().__init__(options, device, dtype)

    def sample_term(self, term: str, n: int, generator: torch.Generator) -> Batch:
        lo, hi = self.box_lower, self.box_upper
        if term == "residual":
            return Batch(latin_hypercube(n, lo, hi, generator))
        if term == "initial":
            x = latin_hypercube(n, lo[:1], hi[:1], generator)
            return Batch(torch.cat([x, torch.zeros_like(x)], dim=1), initial_value(x))
        if term == "boundary":  # pairs (−1, t), (1, t): the first half left, the second right
            t = latin_hypercube(max(n // 2, 1), lo[1:], hi[1:], generator)
            left, right = torch.full_like(t, self.lower[0]), torch.full_like(t, self.upper[0])
            return Batch(torch.cat([torch.cat([left, t], dim=1), torch.cat([right, t], dim=1)]))
        raise KeyError(term)

    def pde_residual(self, fn: Field, inputs: Tensor) -> Tensor:
        # u_t − ε u_xx as one stream on the fast path
        j = jet(fn, inputs, operator={(1,): 1.0, (0, 0): -self.options.epsilon}, fast=self.fast)
        u = j.value
        return j.op + 5 * u**3 - 5 * u

    def term_residual(self, fn: Field, batch: Batch, term: str) -> Tensor:
        if term == "boundary":
            j = jet(fn, batch.inputs, first=(0,), fast=self.fast)
            left, right = torch.cat([j.value, j.d(0)], dim=1).chunk(2)
            return left - right
        return super().term_residual(fn, batch, term)

    def test_grid(self) -> np.ndarray:
        """The data file's grid: x_j = −1 + 2j/modes (j = 0 … modes) fastest, then t."""
        o = self.options
        x = -1.0 + 2.0 * np.arange(o.modes + 1) / o.modes
        t = np.linspace(0.0, 1.0, o.time_levels)
        tt, xx = np.meshgrid(t, x, indexing="ij")
        return np.stack([xx.ravel(), tt.ravel()], axis=1)

    def compute_reference(self) -> tuple[np.ndarray, np.ndarray]:
        o = self.options
        u = solve_allen_cahn(o.epsilon, o.modes, np.linspace(0.0, 1.0, o.time_levels), o.substeps)
        u = np.concatenate([u, u[:, :1]], axis=1)  # x = 1 repeats x = −1
        return self.test_grid(), u.reshape(-1, 1)

    def read_paper_file(self, path) -> np.ndarray:
        """``usol`` [201 t, 512 x] of the data file, on :meth:`test_grid`'s points."""
        import scipy.io

        return np.asarray(scipy.io.loadmat(path)["usol"], dtype=np.float64).reshape(-1, 1)

    def reference_key(self) -> str:
        o = self.options
        return f"{o.epsilon!r}:{o.modes}:{o.time_levels}:{o.substeps}"
