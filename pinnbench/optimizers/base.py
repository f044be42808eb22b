"""The Optimizer contract: options typed by a dataclass, and ``build(params, lr)`` returning the
``torch.optim.Optimizer`` that applies ``p.grad`` to the run's parameters.

The trainer sets ``group["lr"]`` of every parameter group each iteration (the run's warm-up and
cosine schedule), saves ``state_dict()`` in the checkpoint and loads it on resume, so whatever
``build`` returns must keep all of its state there.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import torch
from torch import Tensor

from pinnbench.errors import ConfigError


@dataclass
class OptimizerOptions:
    """Options every optimiser has; an optimiser adds its own in a subclass."""

    name: str = "optimizer"

    def validate(self) -> None:
        """Raise a :class:`~pinnbench.errors.ConfigError` naming ``optimizer.<key>`` for an option out of range."""


def require(ok: bool, key: str, value: Any, allowed: str) -> None:
    """For an Options ``validate``: a :class:`~pinnbench.errors.ConfigError` naming ``optimizer.<key>`` unless ``ok``."""
    if not ok:
        raise ConfigError(f"optimizer.{key}={value!r} is out of range; allowed: {allowed}.")


def library(module: str, optimizer: str, extra: str = "optimizers") -> Any:
    """Import ``module`` (an optional library), or a :class:`~pinnbench.errors.ConfigError` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"optimizer={optimizer} needs the {module} library, an optional extra: "
                          f'pip install "pinnbench[{extra}]"') from None


class Optimizer:
    """Base class of the optimisers a run can choose."""

    Options: ClassVar[type] = OptimizerOptions
    description: ClassVar[str] = ""

    def __init__(self, options: OptimizerOptions) -> None:
        self.options = options

    def check(self) -> None:
        """Raise a :class:`~pinnbench.errors.ConfigError` before training when the optimiser cannot run (a missing library)."""

    def build(self, params: Sequence[Tensor], lr: float) -> torch.optim.Optimizer | Chain:
        """The torch optimiser (or a :class:`Chain` of them) over ``params``, in the network's order
        (each layer's weight, then its bias), at learning rate ``lr``."""
        raise NotImplementedError


class Chain:
    """Several torch optimisers over disjoint parameters, stepped together as one: its parameter
    groups are theirs (so the schedule reaches every one), its state dict holds each one's."""

    def __init__(self, *optimizers: torch.optim.Optimizer) -> None:
        self.optimizers = [o for o in optimizers if o.param_groups]

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [group for o in self.optimizers for group in o.param_groups]

    def add_param_group(self, group: dict[str, Any]) -> None:
        """A group added later (a problem's own parameters, say) goes to the last member."""
        self.optimizers[-1].add_param_group(group)

    def step(self) -> None:
        for o in self.optimizers:
            o.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.optimizers:
            o.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {"optimizers": [o.state_dict() for o in self.optimizers]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for o, state in zip(self.optimizers, state_dict["optimizers"], strict=True):
            o.load_state_dict(state)
