"""A toy problem for method tests: a small network, fixed points, k losses, and a record of which
losses each call evaluated."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn


class ToyLosses:
    """Implements the :class:`~pinnbench.methods.base.Losses` protocol on fixed data.

    Loss i is the mean squared error of the network against target function i on its own points,
    so the gradients of different losses conflict.
    """

    def __init__(self, model: nn.Module, n_losses: int = 3, points: int = 16, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        dtype = next(model.parameters()).dtype
        self.model, self.n_losses = model, n_losses
        self.inputs = [torch.rand(points, 2, generator=generator, dtype=dtype) * 2 - 1 for _ in range(n_losses)]
        self.targets = [torch.sin((i + 1) * x.sum(dim=1, keepdim=True)) + i for i, x in enumerate(self.inputs)]
        self.calls: list[list[int]] = []

    def loss(self, i: int) -> Tensor:
        return (self.model(self.inputs[i]) - self.targets[i]).square().mean()

    def each(self, indices: Sequence[int] | None = None) -> list[Tensor]:
        indices = list(range(self.n_losses)) if indices is None else list(indices)
        self.calls.append(indices)
        return [self.loss(i) for i in indices]

    def __call__(self, indices: Sequence[int] | None = None) -> Tensor:
        return torch.stack(self.each(indices))

    def residuals(self, index: int) -> list[Tensor]:
        return [self.model(self.inputs[index]) - self.targets[index]]


def small_network(seed: int = 0, dtype: torch.dtype = torch.float64) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 1)).to(dtype)


def flat_parameters(model: nn.Module) -> Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def flat_gradient(params: Sequence[Tensor]) -> Tensor:
    return torch.cat([p.grad.reshape(-1) for p in params])
