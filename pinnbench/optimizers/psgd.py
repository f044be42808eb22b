"""PSGD-Kron (Li, "Preconditioned stochastic gradient descent", IEEE TNNLS 2018, arXiv 1512.04202;
the Kronecker-factored form of Li's psgd_torch and Evan Walters' kron_torch): momentum preconditioned
by P = QᵀQ, a Kronecker product of one factor per dimension fitted online. The implementation is
pytorch_optimizer's ``Kron`` (optional extra ``optimizers``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from pinnbench.optimizers.base import Optimizer, OptimizerOptions, library, require


@dataclass
class PSGDOptions(OptimizerOptions):
    name: str = "psgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    update_probability: float = 0.0  # fraction of iterations that refit Q; 0: kron_torch's schedule (below)
    max_size_triangular: int = 8192  # larger dimensions get a diagonal factor

    def validate(self) -> None:
        require(0 <= self.momentum < 1, "momentum", self.momentum, "0 <= momentum < 1")
        require(self.weight_decay >= 0, "weight_decay", self.weight_decay, ">= 0")
        require(0 <= self.update_probability <= 1, "update_probability", self.update_probability,
                "0 (the schedule) or 0 < p <= 1")
        require(self.max_size_triangular >= 1, "max_size_triangular", self.max_size_triangular, ">= 1")


class PSGD(Optimizer):
    """m ← μ m + (1 − μ) g, m̂ = m / (1 − μ^t); for a weight matrix the preconditioner is
    P = (Q_Lᵀ Q_L) ⊗ (Q_Rᵀ Q_R) with triangular Q's fitted online so that P E[m̂ m̂ᵀ] P ≈ I, i.e.
    P ≈ E[m̂ m̂ᵀ]^(−1/2) (Li's criterion with Gaussian probe vectors, one gradient step of size 0.1
    on the Lie group of the Q's per refit); θ ← θ − lr · u, u = P m̂ scaled down to RMS ≤ 1.1. Q is refit at every iteration for the first 500,
    then at a rate decaying as exp(−0.001 (t − 500)) down to 3 % (kron_torch's schedule), or at the
    fixed ``update_probability``. The probe vectors come from the global torch RNG and the occasional
    rebalancing of the factors from NumPy's, both of which the run seeds and checkpoints."""

    Options = PSGDOptions
    description = "PSGD-Kron (Li 2018): momentum preconditioned by a fitted Kronecker factorisation; pytorch_optimizer"

    def check(self) -> None:
        library("pytorch_optimizer", "psgd")

    def build(self, params: Sequence[Tensor], lr: float) -> torch.optim.Optimizer:
        o = self.options
        return library("pytorch_optimizer", "psgd").Kron(
            params, lr=lr, momentum=o.momentum, weight_decay=o.weight_decay,
            pre_conditioner_update_probability=o.update_probability or None,
            max_size_triangular=o.max_size_triangular, precondition_dtype=params[0].dtype)
