"""Gradient-conflict diagnostics: how much the losses' gradients disagree, and with the update.

Given the per-loss gradients G[k, d] and the update direction u[d] that a method handed to its
optimiser, :func:`conflict_measures` returns the pairwise cosines cos(g_i, g_j), the gradient
norms ‖g_i‖ and the cosines cos(u, g_i). A negative cos(u, g_i) means the update increases loss i
to first order: the update conflicts with that loss.
"""

from __future__ import annotations

from itertools import combinations
from typing import Sequence

import torch
from torch import Tensor

from pinnbench.aggregators import unit_rows


def conflict_measures(G: Tensor, update: Tensor, names: Sequence[str]) -> dict[str, Tensor]:
    """``cos_<a>_<b>`` for every pair, ``gnorm_<a>`` and ``cos_update_<a>`` for every loss (0-d tensors)."""
    units = unit_rows(G)
    cosines = units @ units.T
    update_cosines = units @ (update / update.norm().clamp_min(torch.finfo(update.dtype).tiny))
    norms = G.norm(dim=1)
    measures = {f"cos_{names[i]}_{names[j]}": cosines[i, j] for i, j in combinations(range(len(names)), 2)}
    measures.update({f"gnorm_{name}": norms[i] for i, name in enumerate(names)})
    measures.update({f"cos_update_{name}": update_cosines[i] for i, name in enumerate(names)})
    return measures


def flat_grad(params: Sequence[Tensor]) -> Tensor:
    """The parameters' ``.grad`` as one flat vector (zeros where a gradient is missing)."""
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
