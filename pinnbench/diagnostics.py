"""Gradient-conflict diagnostics: how much the losses' gradients disagree, and with the update.

Given the per-loss gradients G[k, d] and the update direction u[d] that a method handed to its
optimiser, :func:`conflict_measures` returns the pairwise cosines cos(g_i, g_j), the gradient
norms ‖g_i‖ and the cosines cos(u, g_i). A negative cos(u, g_i) means the update increases loss i
to first order: the update conflicts with that loss. The optimiser turns the direction into the
step it takes (Adam's per-coordinate scaling, SOAP's rotation, momentum), so :func:`step_cosines`
gives the same cosines for the step itself, cos(θ_t − θ_{t+1}, g_i). Three numbers summarise G as a
whole: the alignment score (:func:`alignment_score`), and the numerical rank and condition number
of G (:func:`numerical_rank`, :func:`condition_number`).
"""

from __future__ import annotations

from itertools import combinations
from typing import Sequence

import torch
from torch import Tensor

from pinnbench.aggregators import unit_rows


def alignment_score(G: Tensor) -> Tensor:
    """A = 2 ‖(1/k) Σ_i g_i/‖g_i‖‖² − 1 (Wang, Bhartari, Li, Perdikaris, "Gradient alignment in
    physics-informed neural networks: a second-order optimization perspective", arXiv 2502.00604):
    1 when all gradients point the same way, cos(g_1, g_2) for two, −1 for two opposite ones;
    below 0 the mean unit gradient is shorter than 1/√2. A zero gradient counts as a zero unit vector."""
    mean_unit = unit_rows(G).mean(dim=0)
    return 2 * (mean_unit @ mean_unit) - 1


def singular_values(G: Tensor) -> Tensor:
    """The min(k, d) singular values of G, largest first, computed in float64."""
    return torch.linalg.svdvals(G.double())


def numerical_rank(G: Tensor) -> Tensor:
    """The number of singular values of G above σ_max · max(k, d) · ε, ε the machine epsilon of G's
    dtype (the default tolerance of ``torch.linalg.matrix_rank`` and NumPy): directions below it are
    within the rounding of the gradients themselves (about 1e-3 σ_max for d ≈ 10⁴ in float32, so a
    gradient 1 000 times shorter than the longest one counts as absent)."""
    sigma = singular_values(G)
    tolerance = sigma.max() * max(G.shape) * torch.finfo(G.dtype).eps
    return (sigma > tolerance).sum()


def condition_number(G: Tensor) -> Tensor:
    """σ_max / σ_min over the min(k, d) singular values of G: 1 for orthogonal gradients of equal
    length, large when the gradients are nearly dependent or their lengths differ by much; inf when
    G is rank-deficient (σ_min = 0), nan when G = 0. In float64, from :func:`singular_values`."""
    sigma = singular_values(G)
    return sigma.max() / sigma.min()


def conflict_measures(G: Tensor, update: Tensor, names: Sequence[str]) -> dict[str, Tensor]:
    """``cos_<a>_<b>`` for every pair, ``gnorm_<a>`` and ``cos_update_<a>`` for every loss, and
    ``alignment``, ``grad_rank``, ``grad_cond`` of G (0-d tensors)."""
    units = unit_rows(G)
    cosines = units @ units.T
    update_cosines = units @ _unit(update)
    norms = G.norm(dim=1)
    measures = {f"cos_{names[i]}_{names[j]}": cosines[i, j] for i, j in combinations(range(len(names)), 2)}
    measures.update({f"gnorm_{name}": norms[i] for i, name in enumerate(names)})
    measures.update({f"cos_update_{name}": update_cosines[i] for i, name in enumerate(names)})
    measures.update(alignment=alignment_score(G), grad_rank=numerical_rank(G), grad_cond=condition_number(G))
    return measures


def step_cosines(G: Tensor, step: Tensor, names: Sequence[str]) -> dict[str, Tensor]:
    """``cos_step_<a>`` = cos(step, g_a) for every loss, where ``step`` = θ_t − θ_{t+1} is the
    optimiser's actual displacement, signed like a gradient: negative means the step taken increases
    loss a to first order, whatever the direction it was given. The displacement is a difference of
    parameters in their dtype; in float32 its rounding moves the cosines by up to about 1e-3."""
    cosines = unit_rows(G) @ _unit(step)
    return {f"cos_step_{name}": cosines[i] for i, name in enumerate(names)}


def _unit(v: Tensor) -> Tensor:
    return v / v.norm().clamp_min(torch.finfo(v.dtype).tiny)


def flat_params(params: Sequence[Tensor]) -> Tensor:
    """The parameters' values as one new flat vector."""
    return torch.cat([p.detach().reshape(-1) for p in params])


def flat_grad(params: Sequence[Tensor]) -> Tensor:
    """The parameters' ``.grad`` as one flat vector (zeros where a gradient is missing)."""
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
