"""The fully connected tanh network used for every problem (the paper's architecture)."""

from __future__ import annotations

import torch
from torch import nn


class MLP(nn.Sequential):
    """input → width (tanh), then ``hidden_layers − 1`` × (width → width, tanh), then → outputs.

    Weights are Xavier-normal with gain 1 and biases 0.001, as in the paper's code.
    """

    def __init__(self, input_dim: int, output_dim: int, width: int = 50, hidden_layers: int = 5) -> None:
        layers: list[nn.Module] = []
        sizes = [input_dim] + [width] * hidden_layers
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(fan_in, fan_out), nn.Tanh()]
        layers.append(nn.Linear(sizes[-1], output_dim))
        super().__init__(*layers)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_normal_(module.weight, gain=1.0)
                nn.init.constant_(module.bias, 0.001)

    @property
    def linears(self) -> list[nn.Linear]:
        return [m for m in self if isinstance(m, nn.Linear)]
