"""How runs are named: a run directory's name from its overrides, shared by ``pinnbench run``
(Hydra's ``run_name`` resolver) and the reporter (which overrides a name does not spell out)."""

from __future__ import annotations

import hashlib

from omegaconf import DictConfig

RUN_NAME_KEYS = {"problem", "method", "optimizer", "finish", "n_losses", "seed", "budget", "budget.iterations",
                 "budget.seconds", "problem.size"}
"""Overrides that are spelt out in a run directory's name; any other override adds a short hash
(options of a group, e.g. ``optimizer.precondition_frequency=10``, too)."""

NEUTRAL_KEYS = {"quiet", "device", "eval_every", "log_every", "checkpoint_every", "plot", "diagnostics.conflict_every",
                "experiment", "experiment/paper_iterations", "experiment/paper_walltime",
                "experiment/optimizers_burgers_cpu", "logger"}
"""Overrides that change neither what is trained nor its result, so they leave the name alone.
An experiment (``configs/experiment/``) sets only keys the name spells out (problem, n_losses,
budget, method, optimizer, finish) or sweeps through overrides, so choosing one leaves the name
alone too."""

NEUTRAL_PREFIXES = ("logger.",)
"""Keys below these (a tracker's options, e.g. ``logger.mlflow.tracking_uri``) are neutral too."""

DEFAULT_CHOICES = {"optimizer": "adam", "finish": "none"}
"""The groups a run directory's name spells out only when they are not these."""


def extra_overrides(overrides) -> list[str]:
    """The overrides a run directory's name does not spell out (neither a key of the name nor a
    neutral one), sorted, without their ``+``/``~`` prefix."""
    stripped = (str(o).lstrip("+~") for o in overrides)
    return sorted(o for o in stripped if o.split("=")[0] not in RUN_NAME_KEYS | NEUTRAL_KEYS
                  and not o.startswith(("hydra", "tune.", "tune=", *NEUTRAL_PREFIXES)))  # tune.*: pinnbench tune's own settings


def trainer_label(method: str, optimizer: str | None = None, finish: str | None = None) -> str:
    """The method, then ``+<optimizer>`` and ``+<finish>`` where they are not the defaults: ``config``,
    ``config+soap`` (ConFIG's direction, SOAP's step), ``adam+lbfgs`` (Adam, then an L-BFGS finish)."""
    chosen = {"optimizer": optimizer, "finish": finish}
    return "+".join([method] + [v for k, v in chosen.items() if v is not None and v != DEFAULT_CHOICES[k]])


def _name(problem: str, size: str, method: str, n_losses: int, label: str, seed: int, extras: list[str]) -> str:
    name = f"{problem}-{size}/{method}-n{n_losses}-{label}-seed{seed}"
    return name + ("-" + hashlib.sha1(";".join(extras).encode()).hexdigest()[:8] if extras else "")


def run_name(*, _root_: DictConfig) -> str:
    """``<problem>-<size>/<method>[+<optimizer>][+<finish>]-n<k>-<budget>-seed<s>[-<hash of other
    overrides>]``: a pure function of the overrides, so a relaunched sweep finds its runs again."""
    cfg = _root_
    choices = cfg.hydra.runtime.choices
    budget = cfg.budget
    if budget.kind == "iterations":
        label = f"it{budget.iterations or cfg.problem.sizes[cfg.problem.size].iterations}"
    elif budget.seconds == ADAM:
        label = "walladam"
    else:
        label = f"wall{budget.seconds:g}s"
    method = trainer_label(choices.get("method"), choices.get("optimizer"), choices.get("finish"))
    return _name(choices.get("problem"), cfg.problem.size, method, cfg.n_losses, label, cfg.seed,
                 extra_overrides(cfg.hydra.overrides.task))


ADAM = "adam"
"""``budget.seconds=adam``: the training seconds of the Adam run of the same setting."""


def adam_run_name(cfg: DictConfig, problem: str, overrides) -> str:
    """The run directory name (below the sweep directory) of the Adam run that sets the wall time of
    ``cfg``'s run: same problem, size, grouping, seed and other overrides (the method's, the
    optimiser's and the finishing phase's options aside), at the size's default iterations, the
    paper's equal-iteration budget: plain Adam, with Adam's step and no finishing phase, whatever
    this run's optimiser and finish."""
    extras = [o for o in extra_overrides(overrides) if not o.startswith(("method.", "optimizer.", "finish."))]
    iterations = cfg.problem.sizes[cfg.problem.size].iterations
    return _name(problem, cfg.problem.size, "adam", cfg.n_losses, f"it{iterations}", cfg.seed, extras)
