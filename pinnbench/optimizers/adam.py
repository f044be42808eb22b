"""Adam (Kingma & Ba 2015), ``torch.optim.Adam``: the paper's optimiser and the default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from pinnbench.optimizers.base import Optimizer, OptimizerOptions, require


@dataclass
class AdamOptions(OptimizerOptions):
    name: str = "adam"
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def validate(self) -> None:
        require(0 <= self.beta1 < 1, "beta1", self.beta1, "0 <= beta1 < 1")
        require(0 <= self.beta2 < 1, "beta2", self.beta2, "0 <= beta2 < 1")
        require(self.eps > 0, "eps", self.eps, "eps > 0")


class Adam(Optimizer):
    """m ← β1 m + (1 − β1) g, v ← β2 v + (1 − β2) g², θ ← θ − lr · m̂ / (√v̂ + ε) with the bias
    corrections m̂ = m / (1 − β1^t), v̂ = v / (1 − β2^t); PyTorch's defaults, as the ConFIG code."""

    Options = AdamOptions
    description = "Adam (Kingma & Ba 2015), torch.optim.Adam: the paper's optimiser"

    def build(self, params: Sequence[Tensor], lr: float) -> torch.optim.Optimizer:
        o = self.options
        return torch.optim.Adam(params, lr=lr, betas=(o.beta1, o.beta2), eps=o.eps)
