"""SOAP (Vyas et al., "SOAP: Improving and stabilizing Shampoo using Adam", ICLR 2025, arXiv
2409.11321): Adam run in the eigenbasis of Shampoo's preconditioner. The implementation is
pytorch_optimizer's ``SOAP`` (optional extra ``optimizers``), which follows the authors' code
(github.com/nikhilvyas/SOAP) step for step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import Tensor

from pinnbench.optimizers.base import Optimizer, OptimizerOptions, library, require


@dataclass
class SOAPOptions(OptimizerOptions):
    name: str = "soap"
    beta1: float = 0.9
    beta2: float = 0.999
    shampoo_beta: Optional[float] = None  # moving average of the Kronecker factors; None: beta2
    eps: float = 1e-8
    weight_decay: float = 0.0
    precondition_frequency: int = 2  # iterations between refreshes of the eigenbasis
    max_precondition_dim: int = 10000  # larger dimensions are not rotated
    precondition_1d: bool = False  # rotate biases too (a d × d factor each)

    def validate(self) -> None:
        require(0 <= self.beta1 < 1, "beta1", self.beta1, "0 <= beta1 < 1")
        require(0 <= self.beta2 < 1, "beta2", self.beta2, "0 <= beta2 < 1")
        require(self.shampoo_beta is None or 0 <= self.shampoo_beta < 1, "shampoo_beta", self.shampoo_beta,
                "null (beta2) or 0 <= shampoo_beta < 1")
        require(self.eps > 0, "eps", self.eps, "eps > 0")
        require(self.weight_decay >= 0, "weight_decay", self.weight_decay, "weight_decay >= 0")
        require(self.precondition_frequency >= 1, "precondition_frequency", self.precondition_frequency, ">= 1")
        require(self.max_precondition_dim >= 1, "max_precondition_dim", self.max_precondition_dim, ">= 1")


class SOAP(Optimizer):
    """For a weight matrix W with gradient G: Kronecker factors L ← β L + (1 − β) G Gᵀ and
    R ← β R + (1 − β) Gᵀ G (β = ``shampoo_beta``), their eigenvectors Q_L, Q_R refreshed every
    ``precondition_frequency`` iterations (one power iteration and a QR decomposition); Adam with
    (beta1, beta2, eps) on the rotated gradient G' = Q_Lᵀ G Q_R, its update rotated back,
    W ← W − lr · Q_L (m̂' / (√v̂' + ε)) Q_Rᵀ. The first iteration only builds the factors (no step).
    Vectors (biases) get plain Adam unless ``precondition_1d``."""

    Options = SOAPOptions
    description = "SOAP (Vyas et al. 2025): Adam in the eigenbasis of Shampoo's preconditioner; pytorch_optimizer"

    def check(self) -> None:
        library("pytorch_optimizer", "soap")

    def build(self, params: Sequence[Tensor], lr: float) -> torch.optim.Optimizer:
        o = self.options
        return library("pytorch_optimizer", "soap").SOAP(
            params, lr=lr, betas=(o.beta1, o.beta2), shampoo_beta=o.shampoo_beta, eps=o.eps,
            weight_decay=o.weight_decay, precondition_frequency=o.precondition_frequency,
            max_precondition_dim=o.max_precondition_dim, precondition_1d=o.precondition_1d)
