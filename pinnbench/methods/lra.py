"""LRA: learning-rate annealing of the loss weights (Wang, Teng, Perdikaris, SIAM J. Sci. Comput.
43 (2021), arXiv 2001.04536, Algorithm 1), in two variants:

* ``paper`` (default): Eqs. (40)–(41) of the paper, λ̂_i = max|∇L_0| / mean|∇L_i| over all
  parameters and λ_i ← β λ_i + (1 − β) λ̂_i, β the weight of the old value (the paper's α = 1 − β:
  it recommends α = 0.9, i.e. β = 0.1; the ConFIG paper's code runs β = 0.999, our default);
* ``code``: the update of the authors' public code (GradientPathologiesPINNs, ``Helmholtz2D_model_tf.py``
  and ``Klein_Gordon_model_tf.py``): the gradients are those of the weighted loss λ_i L_i, so λ_i
  enters the denominator, λ̂_i = max|∇_W L_0| / (λ_i · mean_l mean|∇_{W_l} L_i|), over the weight
  matrices W_l alone (biases left out), the mean over each matrix averaged over the layers; the code
  then runs β = 0.9 (0.1 on the new value) every 10 iterations (``every``). Its fixed point is
  λ = √(max/mean), where the paper's is λ = max/mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import Tensor

from pinnbench.methods.base import Losses, MethodOptions, WeightingMethod, gradient_matrix, require, write_gradient

VARIANTS = ("paper", "code")


@dataclass
class LRAOptions(MethodOptions):
    beta: float = 0.999  # moving-average factor: the weight of the old value
    variant: str = "paper"  # paper (Eqs. 40-41) | code (the authors' public code)
    every: int = 1  # iterations between updates of the weights

    def validate(self, n_losses: int) -> None:
        require(0 <= self.beta < 1, "beta", self.beta, "0 <= beta < 1")
        require(self.variant in VARIANTS, "variant", self.variant, " | ".join(VARIANTS))
        require(self.every >= 1, "every", self.every, "every >= 1")


def paper_estimate(G: Tensor, weights: Tensor, matrices: Tensor) -> Tensor:
    """λ̂_i = max_j |G_0j| / mean_j |G_ij| over all parameters j (Eq. 40); λ̂_0 = 1."""
    magnitudes = G.abs()
    estimate = magnitudes[0].max() / magnitudes.mean(dim=1).clamp_min(torch.finfo(G.dtype).tiny)
    estimate[0] = 1.0
    return estimate


def code_estimate(G: Tensor, weights: Tensor, matrices: Tensor) -> Tensor:
    """λ̂_i = max |G_0| / (λ_i mean_l mean |G_i on W_l|) over the weight matrices W_l only, as the
    authors' code computes it from the gradients of λ_i L_i; ``matrices`` [L, d] marks each matrix's
    entries (1 on them)."""
    magnitudes = G.abs()
    on_matrices = matrices.sum(dim=0) > 0
    per_layer = (magnitudes @ matrices.T) / matrices.sum(dim=1)  # [k, L]: mean |G_i| over each matrix
    denominator = (weights * per_layer.mean(dim=1)).clamp_min(torch.finfo(G.dtype).tiny)
    estimate = magnitudes[0][on_matrices].max() / denominator
    estimate[0] = 1.0
    return estimate


ESTIMATES = {"paper": paper_estimate, "code": code_estimate}


class LRA(WeightingMethod):
    """Loss 0 is the PDE residual (every problem lists it first) and keeps weight 1. At every
    ``every``-th iteration (the first included), from the per-loss gradients g_i (flattened over the
    parameters), λ̂ by the variant's rule and λ_i ← β λ_i + (1 − β) λ̂_i (λ_i starts at 1), and Adam
    steps along Σ_i λ_i g_i with the fresh weights and the same k gradients (k backward passes);
    at the other iterations one backward pass of Σ_i λ_i L_i.
    """

    Options = LRAOptions
    description = "LRA: weights track max|∇L_res| / mean|∇L_i| by a moving average (Wang et al. 2021)"

    def __init__(self, options: LRAOptions, n_losses: int, params: Sequence[Tensor]) -> None:
        super().__init__(options, n_losses, params)
        self.count = 0
        sizes = [p.numel() for p in self.params]
        starts = torch.tensor([0] + sizes).cumsum(0).tolist()
        rows = [i for i, p in enumerate(self.params) if p.dim() == 2]  # the weight matrices
        self.matrices = torch.zeros(len(rows), sum(sizes), device=self.weights.device, dtype=self.weights.dtype)
        for row, i in enumerate(rows):
            self.matrices[row, starts[i]:starts[i + 1]] = 1.0

    def step(self, losses: Losses) -> None:
        update = self.count % self.options.every == 0
        self.count += 1
        if not update:
            return WeightingMethod.step(self, losses)
        G = gradient_matrix(losses.each(), self.params)
        estimate = ESTIMATES[self.options.variant](G, self.weights, self.matrices)
        beta = self.options.beta
        self.weights = beta * self.weights + (1 - beta) * estimate
        write_gradient(self.params, self.weights @ G)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.count = state.get("count", 0)
