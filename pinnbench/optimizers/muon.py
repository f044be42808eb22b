"""Muon (Jordan et al. 2024, "Muon: an optimizer for hidden layers in neural networks";
Liu et al., "Muon is scalable for LLM training", arXiv 2502.16982): momentum, then the nearest
semi-orthogonal matrix (a Newton–Schulz iteration), for 2-D weight matrices; ``torch.optim.Muon``.
Muon is defined for matrices only: every other parameter goes to Adam, in one :class:`Chain`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from pinnbench.optimizers.base import Chain, Optimizer, OptimizerOptions, require

MATRICES = ("hidden", "all")
LR_ADJUSTMENTS = ("original", "match_rms_adamw")


@dataclass
class MuonOptions(OptimizerOptions):
    name: str = "muon"
    momentum: float = 0.95
    nesterov: bool = True
    ns_steps: int = 5  # Newton–Schulz iterations
    weight_decay: float = 0.0
    adjust_lr: str = "original"  # original: lr·√max(1, rows/cols) | match_rms_adamw: lr·0.2·√max(rows, cols)
    matrices: str = "hidden"  # hidden: the hidden layers' weights | all: the first and last layer's too
    adam_beta1: float = 0.9  # Adam for everything Muon does not step
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8

    def validate(self) -> None:
        require(0 <= self.momentum < 1, "momentum", self.momentum, "0 <= momentum < 1")
        require(self.ns_steps >= 1, "ns_steps", self.ns_steps, ">= 1")
        require(self.weight_decay >= 0, "weight_decay", self.weight_decay, ">= 0")
        require(self.adjust_lr in LR_ADJUSTMENTS, "adjust_lr", self.adjust_lr, " | ".join(LR_ADJUSTMENTS))
        require(self.matrices in MATRICES, "matrices", self.matrices, " | ".join(MATRICES))
        require(0 <= self.adam_beta1 < 1, "adam_beta1", self.adam_beta1, "0 <= adam_beta1 < 1")
        require(0 <= self.adam_beta2 < 1, "adam_beta2", self.adam_beta2, "0 <= adam_beta2 < 1")
        require(self.adam_eps > 0, "adam_eps", self.adam_eps, "adam_eps > 0")


def muon_matrices(params: Sequence[Tensor], which: str) -> list[Tensor]:
    """The parameters Muon steps: every 2-D one (``all``), or all but the first and the last 2-D one
    (``hidden``: the network's input and output layers, whose shapes are set by the problem)."""
    matrices = [p for p in params if p.ndim == 2]
    return matrices if which == "all" else matrices[1:-1]


class Muon(Optimizer):
    """For a weight matrix W with gradient G: B ← μ B + (1 − μ) G, then with Nesterov momentum
    M = (1 − μ) G + μ B (else M = B), O = NS₅(M) ≈ U Vᵀ for M = U Σ Vᵀ (five quintic Newton–Schulz
    iterations in bfloat16, as torch.optim.Muon), W ← W − lr · s · O with s = √max(1, rows/cols)
    (``adjust_lr=original``; 1 for the 50 × 50 hidden layers).

    Which parameters: Muon steps the hidden layers' weight matrices (``matrices=hidden``, the usual
    recipe: the input and output layers' shapes are set by the problem, 2 × 50 and 50 × 1 for
    Burgers, and are left to Adam) or every weight matrix (``matrices=all``, as optax's muon, which
    jaxpi uses). Everything else, biases and (for ``hidden``) the first and last layers' weights,
    is stepped by Adam with (adam_beta1, adam_beta2, adam_eps); both at the run's scheduled
    learning rate, as in optax's muon.
    """

    Options = MuonOptions
    description = "Muon (Jordan et al. 2024), torch.optim.Muon, on the hidden weight matrices; Adam on the rest"

    def build(self, params: Sequence[Tensor], lr: float) -> Chain:
        o = self.options
        matrices = muon_matrices(params, o.matrices)
        chosen = {id(p) for p in matrices}
        rest = [p for p in params if id(p) not in chosen]
        members = []
        if matrices:
            members.append(torch.optim.Muon(matrices, lr=lr, weight_decay=o.weight_decay, momentum=o.momentum,
                                            nesterov=o.nesterov, ns_steps=o.ns_steps, adjust_lr_fn=o.adjust_lr))
        if rest:
            members.append(torch.optim.Adam(rest, lr=lr, betas=(o.adam_beta1, o.adam_beta2), eps=o.adam_eps))
        return Chain(*members)
