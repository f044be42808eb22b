"""LRA: learning-rate annealing of the loss weights (Wang, Teng, Perdikaris, SIAM J. Sci. Comput.
43 (2021), Algorithm 1), as run in the ConFIG paper's code."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pinnbench.methods.base import Losses, MethodOptions, WeightingMethod, gradient_matrix, require, write_gradient


@dataclass
class LRAOptions(MethodOptions):
    beta: float = 0.999  # moving-average factor of the weights

    def validate(self, n_losses: int) -> None:
        require(0 <= self.beta < 1, "beta", self.beta, "0 <= beta < 1")


class LRA(WeightingMethod):
    """Loss 0 is the PDE residual (every problem lists it first) and keeps weight 1. Every iteration,
    from the per-loss gradients g_i over all parameters (flattened), for each other loss i:

        λ̂_i = max|g_0| / mean|g_i|,   λ_i ← β λ_i + (1 − β) λ̂_i   (λ_i starts at 1),

    and Adam steps along Σ_i λ_i g_i, using the fresh weights and the same k gradients (k backward
    passes per iteration, none extra).
    """

    Options = LRAOptions
    description = "LRA: weights track max|∇L_res| / mean|∇L_i| by a moving average (Wang et al. 2021)"

    def step(self, losses: Losses) -> None:
        G = gradient_matrix(losses.each(), self.params)
        magnitudes = G.abs()
        estimate = magnitudes[0].max() / magnitudes.mean(dim=1).clamp_min(torch.finfo(G.dtype).tiny)
        estimate[0] = 1.0
        beta = self.options.beta
        self.weights = beta * self.weights + (1 - beta) * estimate
        write_gradient(self.params, self.weights @ G)
