"""DCGD: Adam steps along an update in the dual cone of two gradients, the PDE residual loss's and
the sum of the other losses' (Hwang & Lim, "Dual cone gradient descent for training physics-informed
neural networks", NeurIPS 2024, arXiv 2409.18426)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Sequence

from torch import Tensor

from pinnbench import aggregators
from pinnbench.methods.base import GradientMethod, Losses, MethodOptions, gradient_matrix, require, write_gradient


@dataclass
class DCGDOptions(MethodOptions):
    name: str = "dcgd"
    variant: str = "center"  # center | avg | proj
    label_keys: ClassVar[tuple[str, ...]] = ("variant",)

    @property
    def label(self) -> str:
        """``dcgd-center``, ``dcgd-avg`` or ``dcgd-proj``."""
        return f"{self.name}-{self.variant}"

    def validate(self, n_losses: int) -> None:
        require(self.variant in aggregators.DCGD_VARIANTS, "variant", self.variant,
                " | ".join(aggregators.DCGD_VARIANTS))


class DCGD(GradientMethod):
    """DCGD sees two losses, as in the paper: the PDE residual (loss 0, first in every problem) and
    the sum of all the others, so with 3 losses "residual | boundary + initial" (with 2 losses the
    second loss is already boundary+initial). Each iteration back-propagates those two (two backward
    passes, whatever the number of losses) and hands Adam ``aggregators.DCGD_VARIANTS[variant]`` of
    the pair: the center, avg or proj update, each in the dual cone {v : vᵀg_r ≥ 0, vᵀg_b ≥ 0}.
    ``aggregate(G)`` takes the full per-loss matrix too (it sums rows 1…k−1 itself).
    """

    Options = DCGDOptions
    description = ("DCGD: update in the dual cone of ∇L_res and ∇Σ(other losses), variant center|avg|proj "
                   "(Hwang & Lim, NeurIPS 2024)")

    def __init__(self, options: DCGDOptions, n_losses: int, params: Sequence[Tensor]) -> None:
        super().__init__(options, n_losses, params)
        self.rule = aggregators.DCGD_VARIANTS[options.variant]

    def aggregate(self, G: Tensor) -> Tensor:
        return self.rule(G)

    def step(self, losses: Losses) -> None:
        values = losses.each()
        pair = [values[0], sum(values[1:])] if len(values) > 1 else values
        if getattr(self, "_pair", None) is None:  # one buffer for the run's [2, d] gradient matrices
            self._pair = self.params[0].new_empty(len(pair), sum(p.numel() for p in self.params))
        write_gradient(self.params, self.aggregate(gradient_matrix(pair, self.params, out=self._pair)))
