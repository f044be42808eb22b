"""ConFIG: Adam steps along the conflict-free direction of the per-loss gradients."""

from torch import Tensor

from pinnbench import aggregators
from pinnbench.methods.base import GradientMethod


class ConFIG(GradientMethod):
    description = "ConFIG: equal-cosine direction of the per-loss gradients, length Σ_i g_iᵀĝ (Liu et al. 2025)"

    def aggregate(self, G: Tensor) -> Tensor:
        return aggregators.config(G)
