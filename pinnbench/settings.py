"""Typed configuration: the run schema, and validation of the ``problem``, ``method``,
``optimizer`` and ``finish`` groups.

``configs/config.yaml`` extends :class:`RunConfig` (registered with Hydra's ConfigStore), so a typo
or a wrong type at top level fails before anything runs. The groups name their class in
``_target_``; the class's ``Options`` dataclass is their schema: every other key must be one of its
fields, with its type.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict

import torch
from hydra.core.config_store import ConfigStore
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pinnbench.budget import BudgetConfig
from pinnbench.errors import ConfigError

DEVICES = ("cpu", "cuda")
DTYPES = {"float32": torch.float32, "float64": torch.float64}
COMPILE_CHOICES = ("auto", "true", "false")


@dataclass
class DiagnosticsConfig:
    """``conflict_every: N`` > 0 logs gradient-conflict measures every N iterations (0: off)."""

    conflict_every: int = 0

    def __post_init__(self) -> None:
        if self.conflict_every < 0:
            raise ConfigError(f"diagnostics.conflict_every={self.conflict_every} must be 0 (off) or positive.")


@dataclass
class NetworkConfig:
    """The network's input encoding (:mod:`pinnbench.network`), off by default: ``standardize``
    inputs by the domain's mean and standard deviation; ``periodic``: {input name: period}."""

    standardize: bool = False
    periodic: Dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, period in self.periodic.items():
            if not period > 0:
                raise ConfigError(f"network.periodic.{name}={period} must be a positive period.")


SCHEDULES = ("cosine", "exponential")


@dataclass
class ScheduleConfig:
    """The learning rate per iteration: ``cosine`` (the default: linear warm-up, then cosine from
    ``lr`` to ``final_lr``, see :func:`pinnbench.budget.cosine_with_warmup`) or ``exponential``
    (lr · rate^(i/steps) at iteration i, no warm-up; ``staircase``: rate^⌊i/steps⌋), the decay of
    Wang, Teng, Perdikaris 2021 (rate 0.9 every 1 000 steps, smooth) and Hwang & Lim 2024 (the same,
    staircase)."""

    kind: str = "cosine"
    rate: float = 0.9
    steps: int = 1000
    staircase: bool = False

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:
            raise ConfigError(f"schedule.kind={self.kind!r} is not a schedule; allowed: {', '.join(SCHEDULES)}.")
        if not 0 < self.rate <= 1:
            raise ConfigError(f"schedule.rate={self.rate} must be in (0, 1].")
        if self.steps <= 0:
            raise ConfigError(f"schedule.steps={self.steps} must be a positive number of iterations.")


@dataclass
class RunConfig:
    """Top-level keys of a run (``configs/config.yaml``)."""

    problem: Any = None
    method: Any = None
    optimizer: Any = None
    finish: Any = None
    logger: Any = None
    """Experiment trackers (``configs/logger/``), validated by :func:`pinnbench.trackers.chosen`."""
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    n_losses: int = 3
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    lr: float = 1e-3
    final_lr: float = 1e-4
    resample: bool = True
    fast: bool = True
    compile: str = "auto"
    threads: int = 0
    eval_every: int = 100
    log_every: int = 10
    checkpoint_every: int = 1000
    quiet: bool = False
    plot: bool = True
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)
    tune: Any = None
    """The settings of ``pinnbench tune`` (``configs/tune.yaml``; validated by :mod:`pinnbench.tune`)."""
    network: NetworkConfig = field(default_factory=NetworkConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    lowest_loss: bool = False
    """Also report the test error at the iterate of lowest training loss (``lowest_loss_*``)."""

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ConfigError(f"device={self.device!r} is not a device; allowed: {', '.join(DEVICES)}.")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device=cuda was asked for, but PyTorch sees no CUDA GPU here; use device=cpu.")
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype={self.dtype!r} is not supported; allowed: {', '.join(DTYPES)}.")
        self.compile = str(self.compile).lower()  # compile=true on the command line arrives as a YAML bool
        if self.compile not in COMPILE_CHOICES:
            raise ConfigError(f"compile={self.compile!r} is not a choice; allowed: {', '.join(COMPILE_CHOICES)}.")
        if self.threads < 0:
            raise ConfigError(f"threads={self.threads} must be 0 (PyTorch's default) or a positive number of threads.")
        for key in ("eval_every", "log_every", "checkpoint_every"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{key}={getattr(self, key)} must be a positive number of iterations.")
        for key in ("lr", "final_lr"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"{key}={getattr(self, key)} must be positive.")


def register_schema() -> None:
    ConfigStore.instance().store(name="run_schema", node=RunConfig)


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


def typed(schema: type, values: dict[str, Any], prefix: str = "") -> Any:
    """An instance of dataclass ``schema`` from plain ``values``, types checked by OmegaConf and
    ``__post_init__`` run; a mismatch is a :class:`ConfigError` naming ``prefix + key``."""
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), values))
    except ConfigError:
        raise
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "?"
        raise ConfigError(f"{prefix}{key}: {getattr(exc, 'msg', exc)}".split("\n")[0]) from None


GROUPS = ("problem", "method", "optimizer", "finish")
"""The config groups whose node names a class in ``_target_`` and is typed by its ``Options``."""
NODES = (*GROUPS, "logger")
"""Top-level nodes validated by their own code, not by :class:`RunConfig`'s types (``logger`` holds
one node per chosen tracker, see :mod:`pinnbench.trackers`)."""


def typed_options(group: str, node: DictConfig) -> tuple[type, Any]:
    """(class, validated Options instance) for a node of one of :data:`GROUPS`."""
    if not isinstance(node, DictConfig) or "_target_" not in node:
        raise ConfigError(f"{group} must be chosen from configs/{group}/ (e.g. {group}=burgers); got {node!r}.")
    target = node._target_
    try:
        cls = get_class(target)
    except Exception as exc:  # hydra wraps import errors in its own types
        raise ConfigError(f"{group}._target_={target!r} cannot be imported: {exc}") from None
    schema = cls.Options
    allowed = [f.name for f in dataclasses.fields(schema)]
    values = {k: v for k, v in _plain(node).items() if k not in ("_target_", "search")}  # search: for tuning
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{group}.{unknown[0]} is not an option of {group} {values.get('name', target)!r}; "
            f"allowed: {', '.join(allowed)}."
        )
    return cls, typed(schema, values, prefix=f"{group}.")


def run_options(cfg: DictConfig) -> RunConfig:
    """The validated top-level settings (the :data:`GROUPS` left as config nodes)."""
    values = {k: v for k, v in _plain(cfg).items() if k not in (*NODES, "hydra")}
    run = typed(RunConfig, values)
    for group in NODES:
        setattr(run, group, cfg.get(group))
    return run
