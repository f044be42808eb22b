"""Aggregators: pure functions that turn a gradient matrix G[k, d] (one row per loss) into one
update direction g[d].

They hold no state and know nothing of networks or training loops, so they work in any PyTorch
loop, PINN or multi-task, on any device and float dtype::

    from pinnbench.aggregators import config
    grads = torch.stack([flat_grad(loss_i) for loss_i in losses])   # G[k, d]
    update = config(grads)                                          # g[d]
"""

from __future__ import annotations

import torch
from torch import Tensor


def _check_matrix(G: Tensor) -> None:
    if G.ndim != 2 or G.shape[0] == 0:
        raise ValueError(f"expected a gradient matrix G[k, d] with k >= 1, got shape {tuple(G.shape)}")
    if not G.is_floating_point():
        raise TypeError(f"expected a floating-point gradient matrix, got {G.dtype}")


def unit_rows(G: Tensor) -> Tensor:
    """Rows of G scaled to unit length; zero rows stay zero."""
    norms = G.norm(dim=1, keepdim=True)
    return torch.where(norms > 0, G / norms.clamp_min(torch.finfo(G.dtype).tiny), torch.zeros_like(G))


def config(G: Tensor) -> Tensor:
    """ConFIG (Liu, Chu, Thuerey, ICLR 2025, eq. 3–4).

    With U the row-normalised G: x = U⁺ 1_k (minimum-norm least squares of U x = 1_k), ĝ = x/‖x‖,
    and g = (Σ_i g_iᵀ ĝ) ĝ. When the rows are linearly independent, g has the same positive cosine
    with every g_i.
    """
    _check_matrix(G)
    U = unit_rows(G)
    ones = torch.ones(G.shape[0], 1, dtype=G.dtype, device=G.device)
    direction = (torch.linalg.pinv(U) @ ones).squeeze(1)
    direction = direction / direction.norm().clamp_min(torch.finfo(G.dtype).tiny)
    return (G @ direction).sum() * direction
