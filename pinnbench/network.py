"""The fully connected tanh network used for every problem (the paper's architecture), with an
optional fixed encoding of its inputs (off by default).

The encoding is what some papers put in front of the network (``network`` settings):

* ``standardize``: every input x_i becomes (x_i − μ_i)/σ_i with μ_i, σ_i the mean and standard
  deviation of the uniform distribution on the problem's domain, (lo + hi)/2 and (hi − lo)/√12
  (Wang, Teng, Perdikaris 2021, code of the Helmholtz and Klein–Gordon examples, which estimate the
  same moments from 10⁵ uniform samples; Hwang & Lim 2024 do the same);
* ``periodic``: an input with period P becomes the two features cos(ωx), sin(ωx), ω = 2π/P, so the
  network is exactly P-periodic in it (Wang, Sankaran, Perdikaris 2024, Allen–Cahn; jaxpi's
  ``PeriodEmbs``). A periodic input is not standardised.

Derivatives through the encoding are exact on both paths of :func:`problems.derivatives.jet`.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn


class InputEncoding(nn.Module):
    """x [N, d] → features [N, f]: per input i either the affine (x_i − shift_i)/scale_i (one
    feature) or, where ``omega[i]`` > 0, (cos ω_i x_i, sin ω_i x_i) (two features), in input order.

    ``owner[k]`` is the input feature k depends on; :meth:`derivatives` gives ∂f_k/∂x_owner and
    ∂²f_k/∂x_owner², all a Taylor pass needs (each feature depends on one input)."""

    def __init__(self, shift: Sequence[float], scale: Sequence[float], omega: Sequence[float]) -> None:
        super().__init__()
        self.shift, self.scale, self.omega = tuple(map(float, shift)), tuple(map(float, scale)), tuple(map(float, omega))
        self.owner = tuple(i for i, w in enumerate(self.omega) for _ in range(2 if w > 0 else 1))

    @property
    def affine(self) -> bool:
        """True when no input is periodic: the encoding is x ↦ (x − shift)/scale."""
        return not any(w > 0 for w in self.omega)

    @property
    def features(self) -> int:
        return len(self.owner)

    def forward(self, x: Tensor) -> Tensor:
        """The features [N, f] of the inputs ``x`` [N, d]."""
        columns = []
        for i, (shift, scale, omega) in enumerate(zip(self.shift, self.scale, self.omega)):
            xi = x[:, i:i + 1]
            columns += [torch.cos(omega * xi), torch.sin(omega * xi)] if omega > 0 else [(xi - shift) / scale]
        return torch.cat(columns, dim=1)

    def derivatives(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(∂f_k/∂x_owner(k), ∂²f_k/∂x_owner(k)²), each [N, f]."""
        first, second = [], []
        for i, (scale, omega) in enumerate(zip(self.scale, self.omega)):
            xi = x[:, i:i + 1]
            if omega > 0:
                c, s = torch.cos(omega * xi), torch.sin(omega * xi)
                first += [-omega * s, omega * c]
                second += [-omega**2 * c, -omega**2 * s]
            else:
                first.append(torch.full_like(xi, 1.0 / scale))
                second.append(torch.zeros_like(xi))
        return torch.cat(first, dim=1), torch.cat(second, dim=1)

    def extra_repr(self) -> str:
        return f"shift={self.shift}, scale={self.scale}, omega={self.omega}"


def encoding_for(lower: Sequence[float], upper: Sequence[float], standardize: bool = False,
                 periods: Sequence[float | None] | None = None) -> InputEncoding | None:
    """The encoding of a box domain [lower, upper]: standardised inputs and/or periodic ones
    (``periods[i]``: the period of input i, None where it is not periodic); None when neither."""
    periods = list(periods or [None] * len(lower))
    if not standardize and not any(periods):
        return None
    shift = [(lo + hi) / 2 if standardize else 0.0 for lo, hi in zip(lower, upper)]
    scale = [(hi - lo) / math.sqrt(12) if standardize else 1.0 for lo, hi in zip(lower, upper)]
    omega = [2 * math.pi / p if p else 0.0 for p in periods]
    return InputEncoding(shift, scale, omega)


class MLP(nn.Sequential):
    """[encoding →] input → width (tanh), then ``hidden_layers − 1`` × (width → width, tanh), then → outputs.

    Weights are Xavier-normal with gain 1 and biases 0.001, as in the paper's code. With an
    ``encoding`` (:class:`InputEncoding`) the first layer takes its features.
    """

    def __init__(self, input_dim: int, output_dim: int, width: int = 50, hidden_layers: int = 5,
                 encoding: InputEncoding | None = None) -> None:
        layers: list[nn.Module] = [] if encoding is None else [encoding]
        sizes = [input_dim if encoding is None else encoding.features] + [width] * hidden_layers
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

    @property
    def encoding(self) -> InputEncoding | None:
        return self[0] if isinstance(self[0], InputEncoding) else None


def check_network(problem, options) -> None:
    """Raise a :class:`~pinnbench.errors.ConfigError` unless every periodic input in the ``network``
    settings is an input of ``problem``."""
    from pinnbench.errors import ConfigError

    unknown = sorted(set(options.periodic) - set(problem.input_names))
    if unknown:
        raise ConfigError(f"network.periodic.{unknown[0]}: {unknown[0]!r} is not an input of problem "
                          f"{problem.name!r}; allowed: {', '.join(problem.input_names)}.")


def network_for(problem, options) -> MLP:
    """The network of a run: ``problem``'s size and inputs, the encoding the run's ``network``
    settings (``NetworkConfig`` in ``pinnbench.settings``) ask for (checked by :func:`check_network`)."""
    check_network(problem, options)
    periods = [options.periodic.get(name) for name in problem.input_names]
    encoding = encoding_for(problem.lower, problem.upper, options.standardize, periods)
    return MLP(problem.input_dim, problem.output_dim, problem.size.width, problem.size.hidden_layers, encoding)
