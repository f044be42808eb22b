"""IMTL-G: Adam steps along the combination of the per-loss gradients with equal projections."""

from torch import Tensor

from pinnbench import aggregators
from pinnbench.methods.base import GradientMethod


class IMTLG(GradientMethod):
    description = "IMTL-G: Σ_i α_i g_i, Σα = 1, equal projections on every unit gradient (Liu et al. 2021)"

    def aggregate(self, G: Tensor) -> Tensor:
        return aggregators.imtlg(G)
