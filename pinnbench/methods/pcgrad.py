"""PCGrad: Adam steps along the sum of the per-loss gradients after gradient surgery."""

from __future__ import annotations

from typing import Any, Sequence

from torch import Tensor

from pinnbench import aggregators
from pinnbench.methods.base import GradientMethod, MethodOptions, seeded_generator


class PCGrad(GradientMethod):
    """Projects each g_i off every g_j it conflicts with, visiting the others in a random order drawn
    from the method's own generator (saved with its state), and sums the results (Yu et al. 2020)."""

    description = "PCGrad: project each gradient off the ones it conflicts with, then sum (Yu et al. 2020)"

    def __init__(self, options: MethodOptions, n_losses: int, params: Sequence[Tensor]) -> None:
        super().__init__(options, n_losses, params)
        self.generator = seeded_generator()

    def aggregate(self, G: Tensor) -> Tensor:
        return aggregators.pcgrad(G, self.generator)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
