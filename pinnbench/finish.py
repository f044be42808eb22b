"""The finishing phase (``configs/finish/``): after the main budget, L-BFGS on the method's scalar
objective, as in the "Adam → L-BFGS" recipe of PINNacle (Hao et al., NeurIPS 2024 Datasets and
Benchmarks) and Rathore et al. ("Challenges in training PINNs: a loss landscape perspective",
ICML 2024).

``finish=none`` (the default) has no phase. ``finish=lbfgs`` takes the last part of the run's budget:

* an iteration budget of N iterations: the main phase runs N − ``iterations`` iterations (its
  learning-rate schedule spans those), the phase the last ``iterations``; one phase iteration is one
  call of ``torch.optim.LBFGS.step`` with ``max_iter=1``: one quasi-Newton direction and its
  strong-Wolfe line search (up to ``line_search_evaluations`` evaluations of the objective);
* a wall-time budget of S seconds: the main phase runs until (1 − ``share``)·S seconds (its schedule
  spans those), the phase until S; ``iterations`` is not used.

The collocation points are fixed during the phase, since L-BFGS needs a deterministic objective:
the points the run would have drawn at the iteration the phase starts (a function of the seed and
that iteration alone, see :class:`problems.base.LazyBatches`), or the run's fixed points when it does
not re-draw them. The phase ends early, keeping the parameters it had before its last step, when
that step did not lower the objective (a failed line search, or no direction of descent left) or
made it NaN/inf; the run then completes with fewer iterations than its budget, and its summary says
why (``finish_stopped``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Optional, Sequence

import torch
from torch import Tensor

from pinnbench.budget import Budget
from pinnbench.errors import ConfigError

DTYPES = ("float32", "float64")


@dataclass
class FinishOptions:
    """``finish=none``: no finishing phase."""

    name: str = "none"

    def validate(self, budget: Budget) -> None:
        """Raise a :class:`ConfigError` naming ``finish.<key>`` for an option that does not fit the run."""


class NoFinish:
    """No finishing phase: the main phase takes the whole budget."""

    Options: ClassVar[type] = FinishOptions
    description: ClassVar[str] = "no finishing phase"
    enabled: ClassVar[bool] = False

    def __init__(self, options: FinishOptions) -> None:
        self.options = options

    def main_budget(self, budget: Budget) -> Budget:
        """The part of ``budget`` the main phase trains for (all of it here)."""
        return budget

    def dtype(self, run_dtype: torch.dtype) -> torch.dtype:
        return run_dtype


@dataclass
class LBFGSOptions(FinishOptions):
    name: str = "lbfgs"
    iterations: int = 500  # iteration budgets: the phase is the run's last `iterations` iterations
    share: float = 0.2  # wall-time budgets: the phase is the last `share` of the seconds
    dtype: Optional[str] = None  # None: the run's dtype | float32 | float64 (the network is converted)
    lr: float = 1.0  # the line search's first trial step
    history_size: int = 100  # (s, y) pairs kept
    line_search_evaluations: int = 25  # evaluations of the objective per line search, at most
    tolerance_grad: float = 1e-7  # no step when max |∇| is below this
    tolerance_change: float = 1e-9  # no step when the directional derivative is above −this

    def validate(self, budget: Budget) -> None:
        if self.dtype is not None and self.dtype not in DTYPES:
            raise ConfigError(f"finish.dtype={self.dtype!r} is not a dtype; allowed: null (the run's), "
                              f"{', '.join(DTYPES)}.")
        for key in ("iterations", "history_size", "line_search_evaluations"):
            if getattr(self, key) < 1:
                raise ConfigError(f"finish.{key}={getattr(self, key)} must be a positive integer.")
        for key in ("lr", "tolerance_grad", "tolerance_change"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"finish.{key}={getattr(self, key)} must be positive.")
        if not 0 < self.share < 1:
            raise ConfigError(f"finish.share={self.share} must lie strictly between 0 and 1 (the fraction of a "
                              f"wall-time budget's seconds given to the finishing phase).")
        if budget.kind == "iterations" and self.iterations >= budget.iterations:
            raise ConfigError(f"finish.iterations={self.iterations} must be below the run's {budget.iterations} "
                              f"iterations (the finishing phase is the last finish.iterations of them).")


class LBFGS(NoFinish):
    """After the main phase, ``torch.optim.LBFGS(line_search_fn="strong_wolfe")`` on the method's
    scalar objective (:meth:`pinnbench.methods.base.Method.objective`) on fixed points; see the
    module docstring for its budget."""

    Options = LBFGSOptions
    description = "L-BFGS with a strong-Wolfe line search on the method's scalar objective, after the main budget"
    enabled = True

    def main_budget(self, budget: Budget) -> Budget:
        return budget.shortened(iterations=self.options.iterations, share=self.options.share)

    def dtype(self, run_dtype: torch.dtype) -> torch.dtype:
        return run_dtype if self.options.dtype is None else getattr(torch, self.options.dtype)

    def phase(self, params: Sequence[Tensor], objective: Callable[[], Tensor], latest: Tensor) -> "LBFGSPhase":
        return LBFGSPhase(self.options, params, objective, latest)


class Objective:
    """The closure L-BFGS calls: set ``p.grad`` to ∇f and return f. It remembers its last
    evaluation, so asking again at the same parameters (L-BFGS re-evaluates the point its line
    search accepted, at the start of its next step) costs nothing; ``evaluations`` counts the others."""

    def __init__(self, params: Sequence[Tensor], evaluate: Callable[[], Tensor]) -> None:
        self.params, self.evaluate = list(params), evaluate
        self.evaluations = 0
        self._at: Tensor | None = None
        self._value: Tensor | None = None
        self._grads: list[Tensor] = []

    def flat_params(self) -> Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self.params])

    def __call__(self) -> Tensor:
        here = self.flat_params()
        if self._at is not None and torch.equal(here, self._at):
            for p, g in zip(self.params, self._grads):
                p.grad = g.clone()
            return self._value
        for p in self.params:
            p.grad = None
        with torch.enable_grad():
            value = self.evaluate()
            value.backward()
        self.evaluations += 1
        self._at, self._value = here, value.detach()
        self._grads = [torch.zeros_like(p) if p.grad is None else p.grad.detach().clone() for p in self.params]
        return self._value

    def state_dict(self) -> dict[str, Any]:
        """The count and the remembered evaluation, so a resumed phase re-evaluates nothing."""
        return {"evaluations": self.evaluations, "at": self._at, "value": self._value, "grads": self._grads}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        like = self.params[0]
        self.evaluations = state["evaluations"]
        self._at = None if state["at"] is None else state["at"].to(like)
        self._value = None if state["value"] is None else state["value"].to(like)
        self._grads = [g.to(like) for g in state["grads"]]


class LBFGSPhase:
    """One run's finishing phase in progress: ``step()`` is one L-BFGS iteration; it returns None, or
    why the phase ends (then the parameters are those before the step). ``latest`` is the
    per-loss values of the objective's last evaluation, which :meth:`step` leaves at the current
    parameters."""

    def __init__(self, options: LBFGSOptions, params: Sequence[Tensor], objective: Callable[[], Tensor],
                 latest: Tensor) -> None:
        self.options, self.params = options, list(params)
        self.objective = Objective(self.params, objective)
        self.latest = latest
        self.optimizer = torch.optim.LBFGS(self.params, lr=options.lr, max_iter=1,
                                           max_eval=1 + options.line_search_evaluations,
                                           tolerance_grad=options.tolerance_grad,
                                           tolerance_change=options.tolerance_change,
                                           history_size=options.history_size, line_search_fn="strong_wolfe")

    @property
    def evaluations(self) -> int:
        return self.objective.evaluations

    def step(self) -> str | None:
        before = self.objective()
        saved = ([p.detach().clone() for p in self.params], self.latest.clone())
        self.optimizer.step(self.objective)
        after = self.objective()
        if torch.isfinite(after) and after < before:
            return None
        with torch.no_grad():
            for p, value in zip(self.params, saved[0]):
                p.copy_(value)
        self.latest.copy_(saved[1])
        if not torch.isfinite(after):
            return f"the objective became {after.item()}"
        return ("no decrease: the line search found no lower objective along the L-BFGS direction "
                "(or the gradient is below tolerance)")

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "objective": self.objective.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.objective.load_state_dict(state["objective"])
