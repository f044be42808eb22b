"""PCGrad: Adam steps along the sum of the per-loss gradients after gradient surgery."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from torch import Tensor

from pinnbench import aggregators
from pinnbench.methods.base import GradientMethod, MethodOptions, require, seeded_generator

ORDERS = ("fixed", "random")


@dataclass
class PCGradOptions(MethodOptions):
    order: str = "fixed"
    """``fixed``: project in ascending loss order (the ConFIG paper's code, ``PCGradOperator``);
    ``random``: a fresh random order per loss and iteration (the PCGrad paper)."""

    def validate(self, n_losses: int) -> None:
        require(self.order in ORDERS, "order", self.order, " | ".join(ORDERS))


class PCGrad(GradientMethod):
    """Projects each g_i off every g_j it conflicts with, visiting the others in ascending order or
    in a random order drawn from the method's own generator (saved with its state), and sums the
    results (Yu et al. 2020)."""

    Options = PCGradOptions
    description = "PCGrad: project each gradient off the ones it conflicts with, then sum (Yu et al. 2020)"

    def __init__(self, options: PCGradOptions, n_losses: int, params: Sequence[Tensor]) -> None:
        super().__init__(options, n_losses, params)
        self.generator = seeded_generator()

    def aggregate(self, G: Tensor) -> Tensor:
        return aggregators.pcgrad(G, self.generator, shuffle=self.options.order == "random")

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
