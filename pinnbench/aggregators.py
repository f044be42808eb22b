"""Aggregators: pure functions that turn a gradient matrix G[k, d] (one row per loss) into one
update direction g[d].

They hold no state and know nothing of networks or training loops, so they work in any PyTorch
loop, PINN or multi-task, on any device and float dtype; they are not meant to be differentiated
through (call them on plain gradients)::

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


def _equal_cosine_direction(G: Tensor) -> tuple[Tensor, Tensor]:
    """(x, P): x = U⁺ 1_k, the minimum-norm solution of u_iᵀ x = 1 for every unit row u_i, and P = U⁺."""
    P = torch.linalg.pinv(unit_rows(G))
    return P.sum(dim=1), P


def config(G: Tensor) -> Tensor:
    """ConFIG (Liu, Chu, Thuerey, ICLR 2025, eq. 3–4).

    With U the row-normalised G: x = U⁺ 1_k (minimum-norm least squares of U x = 1_k), ĝ = x/‖x‖,
    and g = (Σ_i g_iᵀ ĝ) ĝ. When the rows are linearly independent, g has the same positive cosine
    with every g_i.
    """
    _check_matrix(G)
    x, _ = _equal_cosine_direction(G)
    direction = x / x.norm().clamp_min(torch.finfo(G.dtype).tiny)
    return (G @ direction).sum() * direction


def pcgrad(G: Tensor, generator: torch.Generator | None = None, shuffle: bool = True) -> Tensor:
    """PCGrad (Yu, Kumar, Gupta, Levine, Hausman, Finn, NeurIPS 2020, Algorithm 1).

    For every i, start from g_iᴾᶜ = g_i and visit the other losses j in a random order: if
    g_iᴾᶜ·g_j < 0, project g_iᴾᶜ ← g_iᴾᶜ − (g_iᴾᶜ·g_j / ‖g_j‖²) g_j. Return Σ_i g_iᴾᶜ.
    The order is drawn with ``torch.randperm`` from ``generator`` (a CPU generator; the global one
    when None), so the result is reproducible from the generator's state; ``shuffle=False`` visits
    j in ascending order instead (the ConFIG paper's code). For k = 2 the order does not matter.
    Computed on the Gram matrix GGᵀ: g_iᴾᶜ = Σ_j W_ij g_j.
    """
    _check_matrix(G)
    k = G.shape[0]
    gram = G @ G.T
    squared_norms = gram.diagonal().clamp_min(torch.finfo(G.dtype).tiny)
    W = torch.eye(k, dtype=G.dtype, device=G.device)
    for i in range(k):
        for j in torch.randperm(k, generator=generator).tolist() if shuffle else range(k):
            if j != i:
                W[i, j] -= (W[i] @ gram[:, j]).clamp(max=0) / squared_norms[j]
    return W.sum(dim=0) @ G


def imtlg(G: Tensor) -> Tensor:
    """IMTL-G (Liu, Li, Kuang, Xue, Chen, Yang, Liao, Zhang, ICLR 2021, §3.2, closed form).

    g = Σ_i α_i g_i with Σ_i α_i = 1 and equal projections on every unit gradient, gᵀu_1 = … = gᵀu_k.
    The paper solves α_{2..k} = g_1 Uᵀ(D Uᵀ)⁻¹ with rows u_1 − u_i of U and g_1 − g_i of D. The same
    g, computed symmetrically: x = U⁺ 1_k has u_iᵀx = 1, and x = Σ_i w_i u_i with w = (U⁺)ᵀx, so
    α_i ∝ w_i/‖g_i‖ and g = x / Σ_i (w_i/‖g_i‖). It shares ConFIG's direction; only the length differs.
    """
    _check_matrix(G)
    x, P = _equal_cosine_direction(G)
    norms = G.norm(dim=1)
    tiny = torch.finfo(G.dtype).tiny
    scale = torch.where(norms > 0, (P.T @ x) / norms.clamp_min(tiny), 0).sum()
    return torch.where(scale.abs() > tiny, x / scale, torch.zeros_like(x))


# ----- DCGD: two gradients, an update in their dual cone ------------------------------------------
def _dcgd_pair(G: Tensor) -> tuple[Tensor, Tensor]:
    """(g_r, g_b): the first row (the PDE residual's gradient) and the sum of the others."""
    _check_matrix(G)
    return G[0], G[1:].sum(dim=0)


def _off(g: Tensor, h: Tensor) -> Tensor:
    """g with its component along h removed, g − (gᵀh/‖h‖²) h (g itself when h = 0)."""
    return g - (g @ h) / (h @ h).clamp_min(torch.finfo(h.dtype).tiny) * h


def dcgd_center(G: Tensor) -> Tensor:
    """DCGD, center variant (Hwang & Lim, "Dual cone gradient descent for training physics-informed
    neural networks", NeurIPS 2024, arXiv 2409.18426; the authors' code, ``dcgd.py``).

    With g_r = G[0] (the residual loss's gradient), g_b = Σ_{i≥1} G[i] (the other losses' summed)
    and g = g_r + g_b: the projection of g on the bisector c = g_r/‖g_r‖ + g_b/‖g_b‖,

        (cᵀg / ‖c‖²) c = ½ (‖g_r‖ + ‖g_b‖) c   when both are nonzero,

    which lies in the dual cone {v : vᵀg_r ≥ 0, vᵀg_b ≥ 0}. The authors write ‖c‖² = 2(1 + cos(g_r, g_b)),
    equal to ours unless a gradient is zero (then we return the other one, they return half of it).
    Opposite gradients give c = 0 and a zero update.
    """
    g_r, g_b = _dcgd_pair(G)
    c = unit_rows(torch.stack([g_r, g_b])).sum(dim=0)
    squared = c @ c
    tiny = torch.finfo(G.dtype).tiny
    return torch.where(squared > tiny, (c @ (g_r + g_b)) / squared.clamp_min(tiny) * c, torch.zeros_like(c))


def dcgd_proj(G: Tensor) -> Tensor:
    """DCGD, projection variant (Hwang & Lim, NeurIPS 2024; the authors' ``dcgd.py``).

    g = g_r + g_b (g_r = G[0], g_b = Σ_{i≥1} G[i]) when it lies in the dual cone (gᵀg_r ≥ 0 and
    gᵀg_b ≥ 0); otherwise its Euclidean projection on the cone, which is the gradient that wins made
    orthogonal to the one that loses: g_r − (g_rᵀg_b/‖g_b‖²) g_b when gᵀg_b < 0, and
    g_b − (g_rᵀg_b/‖g_r‖²) g_r when gᵀg_r < 0 (the two cannot both hold: their sum is ‖g‖²).
    """
    g_r, g_b = _dcgd_pair(G)
    g = g_r + g_b
    return torch.where(g @ g_b < 0, _off(g_r, g_b), torch.where(g @ g_r < 0, _off(g_b, g_r), g))


def dcgd_avg(G: Tensor) -> Tensor:
    """DCGD, average variant (Hwang & Lim, NeurIPS 2024; the authors' ``dcgd.py``).

    g = g_r + g_b (g_r = G[0], g_b = Σ_{i≥1} G[i]) when it lies in the dual cone; otherwise the mean of
    each gradient made orthogonal to the other, ½[(g_r − (g_rᵀg_b/‖g_b‖²) g_b) + (g_b − (g_rᵀg_b/‖g_r‖²) g_r)],
    whose inner product with g_r is ½‖g_r‖²(1 − cos²(g_r, g_b)) ≥ 0, and likewise with g_b.
    As in the authors' code, the sum is not halved when it is kept.
    """
    g_r, g_b = _dcgd_pair(G)
    g = g_r + g_b
    outside = (g @ g_b < 0) | (g @ g_r < 0)
    return torch.where(outside, 0.5 * (_off(g_r, g_b) + _off(g_b, g_r)), g)


DCGD_VARIANTS = {"center": dcgd_center, "avg": dcgd_avg, "proj": dcgd_proj}
"""The DCGD aggregators by variant name (``method.variant`` of ``method=dcgd``)."""


# ----- loss weights from per-loss scales ----------------------------------------------------------
def balancing_weights(scales: Tensor, eps: float = 1e-5) -> Tensor:
    """Weights that bring every loss's scale s_i to the mean scale (jaxpi's ``compute_weights``,
    Wang et al. 2023 "An expert's guide to training PINNs", arXiv 2308.08468):

        w_i = s̄ / (s_i + eps · s̄),   s̄ = (1/k) Σ_j s_j,

    with s_i the norm of ∇L_i (gradient-norm weighting) or the mean NTK diagonal of loss i (NTK
    weighting). All weights are 1 when every scale is zero.
    """
    if scales.ndim != 1 or scales.numel() == 0:
        raise ValueError(f"expected a vector of k >= 1 scales, got shape {tuple(scales.shape)}")
    mean = scales.mean()
    return torch.where(mean > 0, mean / (scales + eps * mean), torch.ones_like(scales))
