"""Derivatives of a field with respect to its inputs, as PDE residuals need them.

:func:`jet` returns the field u, its first derivatives ∂u/∂x_i and its pure second derivatives
∂²u/∂x_i² at a batch of points. Two paths give the same numbers:

* the straightforward path: nested reverse-mode autograd (one backward pass per derivative, each
  recorded for the next), valid for any differentiable function;
* the fast path, for the tanh :class:`~pinnbench.network.MLP`: forward-mode Taylor propagation.
  Along an input direction e_i each layer carries (a, ȧ, ä) with z = W a + b, ż = W ȧ, z̈ = W ä and
  a' = tanh(z): ȧ' = (1 − a'²) ż, ä' = (1 − a'²)(z̈ − 2 a' ż²). Value and all derivative
  streams go through one matrix product per layer, and training back-propagates through this
  first-order graph only, instead of through a graph of backward passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pinnbench.network import MLP

Field = Callable[[Tensor], Tensor]


@dataclass
class Jet:
    """u [N, out]; first[i] = ∂u/∂x_{first_inputs[i]}; second[j] = ∂²u/∂x_{second_inputs[j]}²."""

    value: Tensor
    first: dict[int, Tensor]
    second: dict[int, Tensor]

    def d(self, i: int) -> Tensor:
        return self.first[i]

    def dd(self, i: int) -> Tensor:
        return self.second[i]


def _autograd_jet(fn: Field, inputs: Tensor, first: Sequence[int], second: Sequence[int]) -> Jet:
    x = inputs if inputs.requires_grad else inputs.detach().requires_grad_(True)
    u = fn(x)
    outputs = range(u.shape[1])
    # gradients[o]: [N, d] = ∇_x u_o
    gradients = [torch.autograd.grad(u[:, o], x, torch.ones_like(u[:, o]), create_graph=True)[0] for o in outputs]
    d1 = {i: torch.stack([g[:, i] for g in gradients], dim=1) for i in set(first) | set(second)}
    d2 = {}
    for i in second:
        d2[i] = torch.stack([torch.autograd.grad(d1[i][:, o], x, torch.ones_like(d1[i][:, o]),
                                                 create_graph=True)[0][:, i] for o in outputs], dim=1)
    return Jet(u, {i: d1[i] for i in first}, d2)


def _taylor_jet(linears: Sequence[nn.Linear], inputs: Tensor, first: Sequence[int], second: Sequence[int]) -> Jet:
    """Forward Taylor propagation through Linear → tanh → … → Linear (see the module docstring)."""
    directions = sorted(set(first) | set(second))
    slot = {i: k for k, i in enumerate(directions)}
    curved = [slot[i] for i in second]  # first-order streams that also carry a second-order one
    w0 = linears[0].weight
    z = F.linear(inputs, w0, linears[0].bias)  # [N, width]
    dz = w0[:, directions].T[:, None, :]  # ż = W e_i, the same at every point: [m, 1, width]
    ddz = None  # z̈ = 0 in the first layer
    for linear in linears[1:]:
        a = torch.tanh(z)
        slope = 1 - a.square()
        da = slope * dz  # [m, N, width]
        curvature = -2 * a * dz[curved].square()
        dda = slope * (curvature if ddz is None else ddz + curvature)  # [s, N, width]
        z = F.linear(a, linear.weight, linear.bias)
        dz, ddz = (torch.cat([da, dda]) @ linear.weight.T).split([len(directions), len(second)])
    return Jet(z, {i: dz[slot[i]] for i in first}, {i: ddz[k] for k, i in enumerate(second)})


def jet(fn: Field, inputs: Tensor, first: Sequence[int] = (), second: Sequence[int] = (), fast: bool = True) -> Jet:
    """u, ∂u/∂x_i for i in ``first`` and ∂²u/∂x_i² for i in ``second`` at ``inputs`` [N, d]."""
    if fast and isinstance(fn, MLP):
        return _taylor_jet(fn.linears, inputs, first, second)
    return _autograd_jet(fn, inputs, first, second)
