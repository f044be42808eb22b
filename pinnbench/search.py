"""Search spaces for tuning, and the quasi-random design that samples them.

Each method's and optimiser's YAML declares what of it may be tuned in a ``search:`` block (ignored
by a run), one line per option::

    search:
      beta: {low: 0.9, high: 0.9999, scale: log1m}   # 1 - beta log-uniform in [1e-4, 0.1]
      variant: {choices: [center, avg, proj]}

``scale`` is ``linear`` (uniform), ``log`` (log-uniform) or ``log1m`` (1 − x log-uniform: momenta
and averaging factors near 1). The learning rate's range is shared by every method
(``configs/tune.yaml``, key ``lr``); the cosine's final value follows it as ``final_lr_ratio`` × lr.

A design is a scrambled Halton sequence (Owen-scrambled radical inverses, scipy.stats.qmc) with a
fixed seed, generated in full before any trial starts: point k is the same whoever draws it. The
learning rate has its own one-dimensional sequence, so trial k of every method in a study uses the
same learning rate (paired trials), whatever the number of other options.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from omegaconf import DictConfig, OmegaConf

from pinnbench.errors import ConfigError

SCALES = ("linear", "log", "log1m")
SEARCH_KEY = "search"
"""The key of a group's YAML that holds its search space (dropped before the run's validation)."""


@dataclass(frozen=True)
class Dimension:
    """One tunable value: ``name`` (``lr``, ``method.beta``, ``optimizer.beta2``) and either a range
    [low, high] on a ``scale`` or a list of ``choices``."""

    name: str
    low: float | None = None
    high: float | None = None
    scale: str = "linear"
    choices: tuple | None = None

    def value(self, u: float) -> Any:
        """The value at u ∈ [0, 1) of the unit interval (6 significant digits for a range)."""
        if self.choices is not None:
            return self.choices[min(int(u * len(self.choices)), len(self.choices) - 1)]
        if self.scale == "linear":
            x = self.low + u * (self.high - self.low)
        elif self.scale == "log":
            x = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:  # log1m: 1 - x from 1 - low (u = 0) down to 1 - high (u → 1)
            lo, hi = math.log(1 - self.low), math.log(1 - self.high)
            return 1 - float(f"{math.exp(lo + u * (hi - lo)):.6g}")
        return float(f"{x:.6g}")

    def describe(self) -> str:
        if self.choices is not None:
            return f"{self.name}: one of {', '.join(map(str, self.choices))}"
        return f"{self.name}: [{self.low:g}, {self.high:g}] {self.scale}"

    def distribution(self) -> Any:
        """The Optuna distribution holding this dimension's values."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution

        if self.choices is not None:
            return CategoricalDistribution(list(self.choices))
        return FloatDistribution(self.low, self.high, log=self.scale == "log")


def dimension(name: str, spec: Any, where: str) -> Dimension:
    """A :class:`Dimension` from its YAML ``spec``; a :class:`ConfigError` naming ``where`` when malformed."""
    spec = OmegaConf.to_container(spec, resolve=True) if isinstance(spec, DictConfig) else spec
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: {name} must be {{low, high, scale}} or {{choices: [...]}}; got {spec!r}.")
    if "choices" in spec:
        extra = sorted(set(spec) - {"choices"})
        choices = spec["choices"]
        if extra or not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: {name} takes only a non-empty list `choices`; got {spec!r}.")
        return Dimension(name, choices=tuple(choices))
    extra = sorted(set(spec) - {"low", "high", "scale"})
    if extra or "low" not in spec or "high" not in spec:
        raise ConfigError(f"{where}: {name} needs low and high (and optionally scale: {', '.join(SCALES)}); "
                          f"got {spec!r}.")
    low, high, scale = spec["low"], spec["high"], spec.get("scale", "linear")
    if scale not in SCALES:
        raise ConfigError(f"{where}: {name}.scale={scale!r} is not a scale; allowed: {', '.join(SCALES)}.")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (low, high)) \
            or not low < high:
        raise ConfigError(f"{where}: {name} needs numbers low < high; got low={low!r}, high={high!r}.")
    if scale == "log" and low <= 0:
        raise ConfigError(f"{where}: {name} on a log scale needs low > 0; got {low!r}.")
    if scale == "log1m" and high >= 1:
        raise ConfigError(f"{where}: {name} on the log1m scale (1 - x log-uniform) needs high < 1; got {high!r}.")
    return Dimension(name, float(low), float(high), scale)


def group_space(group: str, node: Any) -> list[Dimension]:
    """The dimensions a group's node (``method``, ``optimizer``) declares in its ``search:`` block,
    each checked against the group's typed options (the key exists; choices and bounds pass its checks)."""
    if node is None or SEARCH_KEY not in node or node[SEARCH_KEY] is None:
        return []
    from pinnbench.settings import typed_options

    label = node.get("name", group)
    cls, _ = typed_options(group, node)
    allowed = {f.name: f for f in dataclasses.fields(cls.Options)}
    dims = []
    for key, spec in node[SEARCH_KEY].items():
        where = f"configs/{group}/{label}.yaml search"
        if key not in allowed or key == "name":
            raise ConfigError(f"{where}: {key} is not an option of {group} {label!r}; "
                              f"allowed: {', '.join(k for k in allowed if k != 'name')}.")
        dim = dimension(f"{group}.{key}", spec, where)
        for value in dim.choices if dim.choices is not None else (dim.low, dim.high):
            problem = _refusal(group, cls.Options, key, value)
            if problem:
                raise ConfigError(f"{where}: {key}={value!r} is refused by {group} {label!r}: {problem}")
        dims.append(dim)
    return sorted(dims, key=lambda d: d.name)


def _validates(options: Any, group: str, n_losses: int) -> str:
    """'' when ``options`` pass their group's own checks (a method's for ``n_losses`` losses), else why not."""
    try:
        options.validate() if group == "optimizer" else getattr(options, "validate", lambda n: None)(n_losses)
    except (ConfigError, TypeError, ValueError) as exc:
        return str(exc)
    return ""


def _refusal(group: str, schema: type, key: str, value: Any) -> str:
    """Why option ``key=value`` is refused (its type, its checks), or '' when it is accepted: a
    method's value must pass its checks for some number of losses its default passes for."""
    from pinnbench.settings import typed

    try:
        options = typed(schema, {key: value}, prefix=f"{group}.")
    except ConfigError as exc:
        return str(exc)
    counts = [n for n in (1, 2, 3, 4) if not _validates(schema(), group, n)] if group == "method" else [0]
    reasons = [_validates(options, group, n) for n in counts]
    return "" if not counts or any(not r for r in reasons) else reasons[0]


def space(cfg: DictConfig, lr: Any) -> list[Dimension]:
    """The whole space of one trainer: the shared learning rate first, then the method's and the
    optimiser's own dimensions."""
    return [dimension("lr", lr, "configs/tune.yaml lr"), *group_space("method", cfg.method),
            *group_space("optimizer", cfg.get("optimizer"))]


def halton(n: int, dims: int, seed: int) -> np.ndarray:
    """The first n points [n, dims] of a scrambled Halton sequence in [0, 1)^dims with this seed."""
    from scipy.stats import qmc

    if dims == 0:
        return np.zeros((n, 0))
    return qmc.Halton(d=dims, scramble=True, seed=seed).random(n)


def design(dims: Sequence[Dimension], n: int, seed: int) -> list[dict[str, Any]]:
    """n design points {name: value}: the first dimension (the learning rate) from its own 1-D
    sequence (seed), the others from one sequence over them (seed + 1)."""
    first = halton(n, 1, seed)[:, 0]
    rest = halton(n, len(dims) - 1, seed + 1)
    return [{dims[0].name: dims[0].value(first[k]),
             **{d.name: d.value(rest[k, j]) for j, d in enumerate(dims[1:])}} for k in range(n)]
