"""MinMax: loss weights trained by gradient ascent while the network descends (self-adaptive
min–max weighting), as run in the ConFIG paper's code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import Tensor

from pinnbench.methods.base import Losses, MethodOptions, WeightingMethod, require


@dataclass
class MinMaxOptions(MethodOptions):
    lr: float = 1e-3  # learning rate of the weights' Adam

    def validate(self, n_losses: int) -> None:
        require(self.lr > 0, "lr", self.lr, "lr > 0")


class MinMax(WeightingMethod):
    """Weights w (starting at 1) maximise the softmax-weighted loss k·Σ_i softmax(w)_i L_i by Adam:
    the ascent gradient is ∂/∂w_j = k s_j (L_j − Σ_i s_i L_i) with s = softmax(w). From the second
    iteration on, one ascent step on the current losses comes first; then the network descends on
    Σ_i w_i L_i. As in the official code, the raw w weight the network's loss (the softmax only
    shapes the ascent), and the weights' Adam is separate from the network's.

    The ascent on the weights is always this Adam at ``method.lr`` (the paper's), whatever the run's
    optimiser: that one (``optimizer=``) steps the network, so every optimiser fits. A finishing
    phase freezes the weights at their last values.
    """

    Options = MinMaxOptions
    description = "MinMax: weights trained by gradient ascent (Adam) on the weighted loss"

    def __init__(self, options: MinMaxOptions, n_losses: int, params: Sequence[Tensor]) -> None:
        super().__init__(options, n_losses, params)
        self.weight_optimizer = torch.optim.Adam([self.weights], lr=options.lr)
        self.iterations = 0

    def update_weights(self, values: Tensor, losses: Losses) -> None:
        self.iterations += 1
        if self.iterations == 1:
            return
        values = values.detach()
        s = torch.softmax(self.weights, dim=0)
        ascent = self.n_losses * s * (values - s @ values)
        self.weights.grad = -ascent  # Adam minimises, so hand it the negated ascent direction
        self.weight_optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self.weights.clone(), "optimizer": self.weight_optimizer.state_dict(),
                "iterations": self.iterations}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.weights.copy_(state["weights"])
        self.weight_optimizer.load_state_dict(state["optimizer"])
        self.iterations = state["iterations"]
