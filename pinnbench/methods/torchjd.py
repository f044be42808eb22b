"""Any aggregator of the torchjd library as a method: Adam along ``Aggregator(G)``.

torchjd (Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization") implements UPGrad,
MGDA, DualProj, AlignedMTL, GradVac, CAGrad, NashMTL, Krum, TrimmedMean, Mean and more, each a
callable from the gradient matrix G[k, d] to one direction g[d]. It is an optional extra:
``pip install "pinnbench[torchjd]"``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, Sequence

from torch import Tensor

from pinnbench.errors import ConfigError
from pinnbench.methods.base import GradientMethod, MethodOptions

EXTRA = 'pip install "pinnbench[torchjd]"'


def available_aggregators() -> dict[str, type]:
    """torchjd's aggregator classes by name; ConfigError naming the extra when torchjd is absent."""
    try:
        import torchjd.aggregation as aggregation
    except ImportError:
        raise ConfigError(f"method=torchjd needs the torchjd library, an optional extra: {EXTRA}") from None
    return {name: cls for name, cls in vars(aggregation).items()
            if inspect.isclass(cls) and issubclass(cls, aggregation.Aggregator) and not inspect.isabstract(cls)
            and cls.__module__.split(".")[-1] not in ("_aggregator_bases",)}


def make_aggregator(name: str, kwargs: dict[str, Any]):
    """Instantiate torchjd aggregator ``name`` with ``kwargs``, or explain what is missing."""
    classes = available_aggregators()
    if name not in classes:
        raise ConfigError(f"method.aggregator={name!r} is not a torchjd aggregator; "
                          f"available: {', '.join(sorted(classes))}.")
    try:
        return classes[name](**kwargs)
    except ImportError as exc:  # an aggregator whose solver is a further optional dependency
        raise ConfigError(f"method.aggregator={name} needs an optional solver: {exc}") from None
    except TypeError as exc:
        signature = inspect.signature(classes[name])
        raise ConfigError(f"method.kwargs {kwargs} do not fit torchjd's {name}{signature}: {exc}") from None


@dataclass
class TorchJDOptions(MethodOptions):
    name: str = "torchjd"
    aggregator: str = "UPGrad"
    kwargs: Dict[str, Any] = field(default_factory=dict)
    label_keys: ClassVar[tuple[str, ...]] = ("aggregator", "kwargs")

    @property
    def label(self) -> str:
        """``torchjd-upgrad``, with the aggregator's keyword arguments if any: ``torchjd-cagrad(c=0.4)``."""
        arguments = ",".join(f"{k}={v}" for k, v in sorted(self.kwargs.items()))
        return f"torchjd-{self.aggregator.lower()}" + (f"({arguments})" if arguments else "")

    def validate(self, n_losses: int) -> None:
        make_aggregator(self.aggregator, dict(self.kwargs))


class TorchJD(GradientMethod):
    Options = TorchJDOptions
    description = "any torchjd aggregator (method.aggregator=NAME, +method.kwargs={...}), stepped by Adam"

    def __init__(self, options: TorchJDOptions, n_losses: int, params: Sequence[Tensor]) -> None:
        super().__init__(options, n_losses, params)
        self.aggregator = make_aggregator(options.aggregator, dict(options.kwargs))

    def aggregate(self, G: Tensor) -> Tensor:
        return self.aggregator(G)

    def state_dict(self) -> dict[str, Any]:
        return {"aggregator": self.aggregator}  # stateful aggregators (GradVac, NashMTL) resume too

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.aggregator = state["aggregator"]
