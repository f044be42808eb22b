"""The Method contract: one object per run that, each iteration, sets ``p.grad`` on the parameters.

The trainer hands a method a :class:`Losses` callable that evaluates any subset of the run's
losses on the current collocation points (a problem computes only the terms it is asked for).
Two families share the contract:

* weighting methods combine the loss values with weights and back-propagate once;
* gradient methods form the per-loss gradient matrix G[k, d] and reduce it with a pure aggregator
  from :mod:`pinnbench.aggregators`.

After ``step`` the trainer applies the run's optimiser (``configs/optimizer/``, Adam by default)
to ``p.grad``, unless the method takes its own steps (M-ConFIG): such a method says so in
:meth:`Method.check_optimizer`, which refuses the optimisers it cannot hand its direction to.
A finishing phase (``configs/finish/``) minimises :meth:`Method.objective` with L-BFGS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, Sequence

import torch
from torch import Tensor

from pinnbench.errors import ConfigError
from pinnbench.optimizers.adam import Adam, AdamOptions
from pinnbench.optimizers.base import Optimizer, OptimizerOptions


class Losses(Protocol):
    """Evaluates losses of the current iteration (all of them when ``indices`` is None).

    ``losses(indices)`` → Tensor[len(indices)], for weighting; ``losses.each(indices)`` → the same
    values as separate scalars, for per-loss gradients: a backward pass from one of them touches only
    its own graph (from a stacked tensor it would traverse every loss's graph with zeros).

    ``losses.residuals(index)`` → the pointwise residuals behind loss ``index``, one Tensor[rows, n_eq]
    per loss term, on this iteration's points: the term's loss is the mean over rows of the sum over
    columns of their squares. Only methods that need per-point quantities call it (NTK weighting).
    """

    n_losses: int

    def __call__(self, indices: Sequence[int] | None = None) -> Tensor: ...

    def each(self, indices: Sequence[int] | None = None) -> list[Tensor]: ...

    def residuals(self, index: int) -> list[Tensor]: ...


@dataclass
class MethodOptions:
    """Options every method has; a method adds its own in a subclass."""

    name: str = "method"
    label_keys: ClassVar[tuple[str, ...]] = ()
    """Options that :attr:`label` spells out; a report names other changed options beside it."""

    @property
    def label(self) -> str:
        """How runs of this method are named in summaries and reports."""
        return self.name


def require(ok: bool, key: str, value: Any, allowed: str) -> None:
    """For an Options ``validate``: raise a :class:`~pinnbench.errors.ConfigError` naming ``method.<key>``, its value and
    the allowed range unless ``ok``."""
    if not ok:
        raise ConfigError(f"method.{key}={value!r} is out of range; allowed: {allowed}.")


def seeded_generator() -> torch.Generator:
    """A CPU generator for a method's own random draws, seeded from the global torch RNG (which the
    trainer seeds with the run's seed). Keep its ``get_state()`` in the method's state_dict."""
    return torch.Generator().manual_seed(int(torch.randint(0, 2**62, ()).item()))


class Method:
    """Base class of all methods."""

    Options: ClassVar[type] = MethodOptions
    description: ClassVar[str] = ""

    def __init__(self, options: MethodOptions, n_losses: int, params: Sequence[Tensor]) -> None:
        self.options = options
        self.n_losses = n_losses
        self.params = list(params)

    @classmethod
    def check_optimizer(cls, options: OptimizerOptions) -> None:
        """Raise a one-line :class:`~pinnbench.errors.ConfigError` when this method cannot hand its direction to the
        optimiser of ``options``; every optimiser is fine unless a method takes its own steps."""

    def make_optimizer(self, lr: float, optimizer: Optimizer | None = None) -> torch.optim.Optimizer:
        """The optimiser that applies ``p.grad``: the run's ``optimizer`` (default Adam, the paper's
        choice for all but M-ConFIG) over the method's parameters."""
        return (optimizer or Adam(AdamOptions())).build(self.params, lr)

    def objective(self, values: Tensor) -> Tensor:
        """The scalar a finishing phase minimises, from the losses ``values`` [k]: Σ_i L_i. A gradient
        method's direction (ConFIG's, PCGrad's, …) is the gradient of no scalar function, and an
        L-BFGS line search needs one whose gradient it follows, so such methods finish on the plain
        sum, the objective their combinations are built to decrease without conflict."""
        return values.sum()

    def step(self, losses: Losses) -> None:
        """Set ``p.grad`` for every parameter from the losses of this iteration."""
        raise NotImplementedError

    def record(self) -> dict[str, Tensor]:
        """Per-loss quantities worth a history column (e.g. weights), as 0-d or [k] tensors."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class WeightingMethod(Method):
    """Back-propagates Σ_i w_i L_i once; subclasses choose the weights."""

    def __init__(self, options: MethodOptions, n_losses: int, params: Sequence[Tensor]) -> None:
        super().__init__(options, n_losses, params)
        self.weights = torch.ones(n_losses, device=self.params[0].device, dtype=self.params[0].dtype)

    def update_weights(self, values: Tensor, losses: Losses) -> None:
        """Update ``self.weights`` before the backward pass (equal weights by default)."""

    def step(self, losses: Losses) -> None:
        values = losses()
        self.update_weights(values, losses)
        (self.weights.detach() * values).sum().backward()

    def objective(self, values: Tensor) -> Tensor:
        """Σ_i w_i L_i with the weights the main phase ended with, frozen (a finishing phase does not
        update them)."""
        return (self.weights.detach() * values).sum()

    def record(self) -> dict[str, Tensor]:
        return {"weight": self.weights}

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self.weights}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.weights = state["weights"].to(self.weights)


def gradient_matrix(values: Sequence[Tensor], params: Sequence[Tensor], out: Tensor | None = None) -> Tensor:
    """G[k, d]: row i is ∇_θ values[i], flattened over ``params``; one backward pass per loss.

    Pass separate scalars (``losses.each()``) so each pass touches only its own loss's graph.
    """
    k = len(values)
    sizes = [p.numel() for p in params]
    if out is None:
        out = torch.empty(k, sum(sizes), device=params[0].device, dtype=params[0].dtype)
    for i in range(k):
        grads = torch.autograd.grad(values[i], params, retain_graph=i < k - 1, allow_unused=True)
        for chunk, grad in zip(out[i].split(sizes), grads):
            if grad is None:
                chunk.zero_()
            else:
                chunk.copy_(grad.reshape(-1))
    return out


def write_gradient(params: Sequence[Tensor], vector: Tensor) -> None:
    """Set ``p.grad`` from one flat vector laid out like :func:`gradient_matrix`'s rows."""
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = vector[offset : offset + n].view_as(p)
        offset += n


class GradientMethod(Method):
    """Forms G[k, d] from all k losses and applies ``aggregate(G)``."""

    def aggregate(self, G: Tensor) -> Tensor:
        raise NotImplementedError

    def step(self, losses: Losses) -> None:
        if getattr(self, "_gradients", None) is None:  # one buffer for the run's gradient matrices
            like = self.params[0]
            self._gradients = like.new_empty(self.n_losses, sum(p.numel() for p in self.params))
        G = gradient_matrix(losses.each(), self.params, out=self._gradients)
        write_gradient(self.params, self.aggregate(G))
