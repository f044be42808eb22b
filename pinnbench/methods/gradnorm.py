"""Gradient-norm weighting (Wang, Sankaran, Wang, Perdikaris, "An expert's guide to training
physics-informed neural networks", arXiv 2308.08468, 2023), as in the authors' jaxpi library."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from torch import Tensor

from pinnbench import aggregators
from pinnbench.methods.base import Losses, MethodOptions, WeightingMethod, gradient_matrix, require, write_gradient


@dataclass
class GradNormOptions(MethodOptions):
    name: str = "gradnorm"
    momentum: float = 0.9  # moving average of the weights
    every: int = 1000  # iterations between two recomputations of the weights

    def validate(self, n_losses: int) -> None:
        require(0 <= self.momentum < 1, "momentum", self.momentum, "0 <= momentum < 1")
        require(self.every >= 1, "every", self.every, "every >= 1 (iterations)")


class GradNorm(WeightingMethod):
    """Adam on Σ_i w_i L_i with weights (starting at 1) recomputed now and then from per-loss scales
    s_i, here the gradient norms s_i = ‖∇L_i‖:

        ŵ_i = s̄ / (s_i + 1e-5 s̄),  s̄ = mean_j s_j  (:func:`~pinnbench.aggregators.balancing_weights`),
        w ← momentum · w + (1 − momentum) · ŵ.

    jaxpi updates the weights after its steps 0, every, 2·every, … from the parameters those steps
    produced; here they are recomputed at the start of iterations 1, 1 + every, 1 + 2·every, … from
    the same parameters (on that iteration's points), so the first step uses weights 1 as in jaxpi.
    A recomputing iteration back-propagates each loss once (k passes) and steps along Σ_i w_i ∇L_i
    with the new weights; every other iteration costs what Adam's does (one backward pass).
    """

    Options = GradNormOptions
    description = ("Gradient-norm weighting: w_i ∝ mean_j‖∇L_j‖/‖∇L_i‖, moving average, recomputed every "
                   "`every` iterations (Wang et al. 2023, expert's guide; jaxpi)")

    def __init__(self, options: GradNormOptions, n_losses: int, params: Sequence[Tensor]) -> None:
        super().__init__(options, n_losses, params)
        self.iteration = 0  # iterations done

    def due(self) -> bool:
        """Whether this iteration recomputes the weights."""
        return self.iteration >= 1 and (self.iteration - 1) % self.options.every == 0

    def reweight(self, scales: Tensor) -> None:
        """Move the weights towards :func:`~pinnbench.aggregators.balancing_weights` of ``scales``."""
        momentum = self.options.momentum
        fresh = aggregators.balancing_weights(scales.detach().to(self.weights))
        self.weights = momentum * self.weights + (1 - momentum) * fresh

    def recompute_and_step(self, losses: Losses) -> None:
        """The step of a recomputing iteration: weights from the gradient norms, then Σ_i w_i ∇L_i
        from the same gradients."""
        G = gradient_matrix(losses.each(), self.params)
        self.reweight(G.norm(dim=1))
        write_gradient(self.params, self.weights @ G)

    def step(self, losses: Losses) -> None:
        if self.due():
            self.recompute_and_step(losses)
        else:
            super().step(losses)
        self.iteration += 1

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self.weights, "iteration": self.iteration}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.iteration = state["iteration"]
