"""ReLoBRaLo: relative loss balancing with random look-back (Bischof & Kraus, arXiv 2110.09813,
2021), as run in the ConFIG paper's code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import Tensor

from pinnbench.methods.base import Losses, MethodOptions, WeightingMethod, require, seeded_generator


@dataclass
class ReLoBRaLoOptions(MethodOptions):
    beta: float = 0.999  # moving-average factor (the paper's alpha)
    tau: float = 0.1  # softmax temperature
    rho: float = 0.999  # probability of looking back one iteration (else to iteration 0)

    def validate(self, n_losses: int) -> None:
        require(0 <= self.beta <= 1, "beta", self.beta, "0 <= beta <= 1")
        require(self.tau > 0, "tau", self.tau, "tau > 0")
        require(0 <= self.rho <= 1, "rho", self.rho, "0 <= rho <= 1")


class ReLoBRaLo(WeightingMethod):
    """With λ̂(t; t') = k · softmax_i(L_i(t) / (τ L_i(t'))) the balance of the losses relative to
    iteration t', and a Bernoulli draw b ~ B(ρ) each iteration:

        λ(t) = β [b λ(t−1) + (1 − b) λ̂(t; 0)] + (1 − β) λ̂(t; t−1),

    starting from λ = 1 at the first iteration, whose losses are L(0). Adam steps on Σ_i λ_i L_i.
    The draws come from the method's own generator, saved with its state.
    """

    Options = ReLoBRaLoOptions
    description = "ReLoBRaLo: softmax of loss ratios, random look-back, moving average (Bischof & Kraus 2021)"

    def __init__(self, options: ReLoBRaLoOptions, n_losses: int, params: Sequence[Tensor]) -> None:
        super().__init__(options, n_losses, params)
        self.generator = seeded_generator()
        self.first: Tensor | None = None
        self.previous: Tensor | None = None

    def balance(self, values: Tensor, reference: Tensor) -> Tensor:
        return self.n_losses * torch.softmax(values / (self.options.tau * reference), dim=0)

    def update_weights(self, values: Tensor, losses: Losses) -> None:
        values = values.detach()
        if self.first is None:
            self.first = values
        else:
            beta = self.options.beta
            look_back = bool(torch.rand((), generator=self.generator) < self.options.rho)  # a CPU draw: no sync
            history = self.weights if look_back else self.balance(values, self.first)
            self.weights = beta * history + (1 - beta) * self.balance(values, self.previous)
        self.previous = values

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self.weights, "first": self.first, "previous": self.previous,
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        to = self.weights
        self.first = None if state["first"] is None else state["first"].to(to)
        self.previous = None if state["previous"] is None else state["previous"].to(to)
        self.generator.set_state(state["generator"])
