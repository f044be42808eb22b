"""The training loop: one run = one problem, one method, one optimiser, one budget, one seed.

:func:`prepare` validates the whole configuration and builds every object before any training;
:func:`train` runs (or resumes, or skips) the run in its directory and returns its summary.

How :func:`train` reads, top to bottom: :func:`build` makes the :class:`Trainee` (network, method,
optimiser, losses); a :class:`Run` holds where the run is (iterations, clock, history, errors) and
writes its records; :meth:`Run.resume` picks up a checkpoint. Then one iteration at a time: a
:func:`main_step` (the method sets ``p.grad``, the optimiser steps) until the main budget is spent,
then, with a finishing phase (``finish=lbfgs``), L-BFGS steps until the whole budget is; after each
iteration :meth:`Run.record` writes a history row, the test error and a checkpoint when they are due;
after each checkpoint the experiment trackers (``logger=``, :mod:`pinnbench.trackers`) get the new rows.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from omegaconf import DictConfig
from torch import Tensor
from tqdm import tqdm

from pinnbench import records
from pinnbench.allocator import keep_freed_memory
from pinnbench.budget import Budget, Clock, scheduled_lr
from pinnbench.diagnostics import conflict_measures, flat_grad, flat_params, step_cosines
from pinnbench.errors import ConfigError
from pinnbench.finish import FinishOptions, LBFGSPhase, NoFinish
from pinnbench.methods.base import Method, gradient_matrix
from pinnbench.naming import trainer_label
from pinnbench.network import check_network, network_for
from pinnbench.optimizers.adam import Adam, AdamOptions
from pinnbench.optimizers.base import Optimizer
from pinnbench.provenance import provenance
from pinnbench.settings import DTYPES, RunConfig, run_options, typed_options
from pinnbench.trackers import Trackers, Where
from pinnbench.trackers import chosen as chosen_trackers
from problems.base import Batch, LazyBatches, Problem
from problems.derivatives import derivative_mode

COMPLETED, DIVERGED = "completed", "diverged"
MAIN, FINISH = "main", "finish"
"""The phases a history row can belong to (its ``phase`` column, in runs with a finishing phase)."""


@dataclass
class Setup:
    """Everything a run needs, validated."""

    run: RunConfig
    problem: Problem
    method_cls: type
    method_options: Any
    groups: tuple[tuple[str, ...], ...]
    budget: Budget
    device: torch.device
    dtype: torch.dtype
    optimizer: Optimizer = field(default_factory=lambda: Adam(AdamOptions()))
    finish: NoFinish = field(default_factory=lambda: NoFinish(FinishOptions()))
    finish_problem: Problem | None = None
    """The problem in the finishing phase's dtype, when that is not the run's (else ``problem``)."""
    trackers: list[tuple[type, Any]] = field(default_factory=list)
    """The experiment trackers (``logger=``): (class, options) of each, see :mod:`pinnbench.trackers`."""

    @property
    def loss_names(self) -> list[str]:
        return [Problem.group_name(g) for g in self.groups]

    @property
    def main_budget(self) -> Budget:
        """The main phase's part of the budget: all of it without a finishing phase."""
        return self.finish.main_budget(self.budget)


def _group(name: str, node: Any, default: type) -> tuple[type, Any]:
    """(class, options) of a group node, or of ``default`` when a composition has no such group."""
    return (default, default.Options()) if node is None else typed_options(name, node)


def prepare(cfg: DictConfig) -> Setup:
    """Validate ``cfg`` and build the problem; raises :class:`ConfigError` on bad input."""
    run = run_options(cfg)
    device, dtype = torch.device(run.device), DTYPES[run.dtype]
    problem_cls, problem_options = typed_options("problem", run.problem)
    method_cls, method_options = typed_options("method", run.method)
    optimizer_cls, optimizer_options = _group("optimizer", run.optimizer, Adam)
    finish_cls, finish_options = _group("finish", run.finish, NoFinish)
    problem: Problem = problem_cls(problem_options, device=device, dtype=dtype)
    groups = problem.groups(run.n_losses)
    check_network(problem, run.network)
    if hasattr(method_options, "validate"):
        method_options.validate(len(groups))
    optimizer_options.validate()
    method_cls.check_optimizer(optimizer_options)
    optimizer: Optimizer = optimizer_cls(optimizer_options)
    optimizer.check()
    iterations = run.budget.iterations or problem.size.iterations
    budget = Budget(run.budget, iterations)
    finish_options.validate(budget)
    finish = finish_cls(finish_options)
    problem.fast = derivative_mode(run.fast, run.compile, iterations if run.budget.kind == "iterations" else None,
                                   run.budget.seconds if isinstance(run.budget.seconds, float) else None)
    if run.budget.clock == "process" and device.type != "cpu":
        raise ConfigError("budget.clock=process measures CPU time; on a GPU use budget.clock=wall.")
    trackers = chosen_trackers(run.logger)  # a missing package is an error now, not after training
    problem.scored_reference  # says now, before any training, when the paper's reference file is missing
    finish_problem = None
    if finish.enabled and finish.dtype(dtype) != dtype:
        finish_problem = problem_cls(problem_options, device=device, dtype=finish.dtype(dtype))
        finish_problem.fast = problem.fast
    return Setup(run, problem, method_cls, method_options, groups, budget, device, dtype, optimizer, finish,
                 finish_problem, trackers)


UNRECORDED_KEYS = ("problem", "method", "optimizer", "finish", "logger", "quiet", "plot", "threads", "compile", "fast",
                   "eval_every", "log_every", "checkpoint_every", "diagnostics", "tune")
"""Run settings that change neither what is trained nor its result (``fast`` and ``compile`` change
only float rounding); they are left out of a run's recorded configuration (the groups are recorded
as their typed options)."""

BEFORE_OPTIMIZERS = {"optimizer": AdamOptions(), "finish": FinishOptions()}
"""What a run recorded before the optimiser and the finishing phase were settings trained with."""


def _json(config: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(config, default=lambda o: dataclasses.asdict(o) if dataclasses.is_dataclass(o)
                                 else str(o)))


def resolved_config(setup: Setup) -> dict[str, Any]:
    """The configuration that decides a run's result, every default filled in: the typed options of
    the problem, the method, the optimiser and the finishing phase, and the run settings but
    :data:`UNRECORDED_KEYS`. Recorded in the summary and the checkpoint, and compared on a relaunch."""
    run = {f.name: getattr(setup.run, f.name) for f in dataclasses.fields(setup.run) if f.name not in UNRECORDED_KEYS}
    return _json({"problem": setup.problem.options, "method": setup.method_options,
                  "optimizer": setup.optimizer.options, "finish": setup.finish.options, **run})


def schema_defaults(setup: Setup) -> dict[str, Any]:
    """:func:`resolved_config` of the schemas' own defaults (each Options and RunConfig field's
    default value): a key a recorded configuration lacks (an option added since) counts as
    unchanged when the run now uses this value, so a new option must default to the old behaviour."""
    run = dataclasses.replace(RunConfig(), problem=None, method=None)
    plain = {f.name: getattr(run, f.name) for f in dataclasses.fields(run) if f.name not in UNRECORDED_KEYS}
    return _json({"problem": type(setup.problem.options)(), "method": type(setup.method_options)(),
                  "optimizer": type(setup.optimizer.options)(), "finish": type(setup.finish.options)(), **plain})


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(node, dict):
        return {prefix: node}
    return {k: v for key, value in node.items() for k, v in _flatten(value, f"{prefix}{key}.").items()} \
        if node else {prefix: {}}


def config_differences(recorded: dict[str, Any] | None, now: dict[str, Any],
                       defaults: dict[str, Any] | None = None) -> list[str]:
    """``key: recorded → now`` for every key whose value differs (a key missing on one side too,
    unless it is missing from the record and now has its ``defaults`` value). A record without
    optimiser or finishing phase was made before they were settings: Adam and none
    (:data:`BEFORE_OPTIMIZERS`)."""
    if recorded is None:
        return ["the run was made before run configurations were recorded"]
    before = {k: v for k, v in _json(BEFORE_OPTIMIZERS).items() if k in now and k not in recorded}
    old, new, default = _flatten({**before, **recorded}), _flatten(now), _flatten(defaults or {})
    missing = object()
    return [f"{key.rstrip('.')}: {old.get(key, missing)!r} → {new.get(key, missing)!r}".replace(repr(missing), "absent")
            for key in sorted(old.keys() | new.keys()) if old.get(key, missing) != new.get(key, missing)
            and not (key not in old and key in default and new[key] == default[key])]


def check_same_config(run_dir: Path, recorded: dict[str, Any] | None, now: dict[str, Any], what: str,
                      defaults: dict[str, Any] | None = None) -> None:
    """Raise :class:`ConfigError` when the configuration recorded with ``what`` (a finished run's
    summary, a checkpoint) is not the one a run would use now: its results would be mixed up."""
    differences = config_differences(recorded, now, defaults)
    if differences:
        shown = "; ".join(differences[:6]) + (f"; and {len(differences) - 6} more" if len(differences) > 6 else "")
        raise ConfigError(f"{run_dir}: its {what} was made with another configuration ({shown}); refusing to "
                          f"count it as done or to resume it: move the directory away to train this run afresh.")


class GroupLosses:
    """The :class:`~pinnbench.methods.base.Losses` a method sees: evaluates chosen groups on the
    current points, and remembers the latest value of every group for the history."""

    def __init__(self, problem: Problem, model: torch.nn.Module, groups, device, dtype) -> None:
        self.problem, self.model, self.groups = problem, model, groups
        self.n_losses = len(groups)
        self.latest = torch.full((self.n_losses,), float("nan"), device=device, dtype=dtype)
        self.nonfinite = torch.zeros((), dtype=torch.bool, device=device)
        self.batches: dict[str, Batch] = {}

    def each(self, indices: Sequence[int] | None = None) -> list[Tensor]:
        indices = list(range(self.n_losses)) if indices is None else list(indices)
        values = [self.problem.group_loss(self.model, self.batches, self.groups[i]) for i in indices]
        detached = torch.stack([v.detach() for v in values])
        for row, i in enumerate(indices):  # integer indexing: no index tensor to copy to the device
            self.latest[i] = detached[row]
        self.nonfinite |= ~torch.isfinite(detached).all()
        return values

    def __call__(self, indices: Sequence[int] | None = None) -> Tensor:
        return torch.stack(self.each(indices))

    def residuals(self, index: int) -> list[Tensor]:
        """Pointwise residuals [rows, n_eq] of every term of loss ``index`` on the current points."""
        return [self.problem.term_residual(self.model, self.batches[t], t) for t in self.groups[index]]


def _rng_state(generator: torch.Generator) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
             "sampler": generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    generator.set_state(state["sampler"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def _say(message: str) -> None:
    print(message, file=sys.stderr if message.startswith("error") else sys.stdout, flush=True)


# ----- what is trained ----------------------------------------------------------------------------
@dataclass
class Trainee:
    """What a run trains and how: the network, the method, the optimiser that applies the method's
    direction, the losses the method sees, and the sampler of collocation points."""

    model: torch.nn.Module
    params: list[Tensor]
    method: Method
    optimizer: Any
    losses: GroupLosses
    generator: torch.Generator
    fixed_points: dict[str, Batch] | None


def own_param_groups(optimizer: torch.optim.Optimizer, groups: list[dict], lr: float) -> None:
    """Move each of ``groups``' parameters (a problem's, e.g. an inverse run's unknown) out of the
    optimiser's groups into a group of its own, whose learning rate is the run's schedule scaled by
    ``lr_scale`` = group["lr"] / ``lr`` (so it peaks at group["lr"])."""
    for group in groups:
        moved = {id(p) for p in group["params"]}
        for existing in optimizer.param_groups:
            existing["params"] = [p for p in existing["params"] if id(p) not in moved]
        optimizer.add_param_group({"params": group["params"], "lr": group["lr"], "lr_scale": group["lr"] / lr})


def build(setup: Setup) -> Trainee:
    """The trainee, seeded by the run's seed: the network's initial weights are the first draws of
    the global RNG, a method's own generator is seeded by the next."""
    run, problem = setup.run, setup.problem
    _seed_everything(run.seed)
    if run.threads:
        torch.set_num_threads(run.threads)
    if setup.device.type == "cpu":
        keep_freed_memory()  # reuse freed activations instead of page-faulting fresh ones every iteration
    model = network_for(problem, run.network).to(setup.device, setup.dtype)
    unknowns = problem.param_groups()  # an inverse problem's parameters: trained with the network, at their own rate
    params = list(model.parameters()) + [p for group in unknowns for p in group["params"]]
    method: Method = setup.method_cls(setup.method_options, len(setup.groups), params)
    optimizer = method.make_optimizer(run.lr, setup.optimizer)
    own_param_groups(optimizer, unknowns, run.lr)
    generator = torch.Generator(device=setup.device)
    generator.manual_seed(run.seed)
    losses = GroupLosses(problem, model, setup.groups, setup.device, setup.dtype)
    fixed_points = None if run.resample else problem.sample(torch.Generator(setup.device).manual_seed(run.seed + 1))
    return Trainee(model, params, method, optimizer, losses, generator, fixed_points)


def main_step(setup: Setup, trainee: Trainee, iteration: int, lr: float,
              diagnose: Callable[[], dict[str, Tensor]] | None = None) -> dict[str, Tensor]:
    """One main-phase iteration: the learning rate ``lr`` in every parameter group, this iteration's
    points, the method's direction in ``p.grad`` (and, when ``diagnose`` is given, the conflict
    measures of it, off the clock), the optimiser's step. Returns the measures, if any."""
    for group in trainee.optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
    trainee.losses.batches = trainee.fixed_points or LazyBatches(setup.problem, trainee.generator, setup.run.seed,
                                                                 iteration)
    trainee.optimizer.zero_grad(set_to_none=True)
    trainee.method.step(trainee.losses)
    diagnosis = diagnose() if diagnose is not None else {}
    trainee.optimizer.step()
    return diagnosis


def finishing_phase(setup: Setup, trainee: Trainee, started_at: int) -> tuple[LBFGSPhase, GroupLosses]:
    """The finishing phase that follows iteration ``started_at``: the network converted to the
    phase's dtype, the losses on fixed points (those the run would draw at ``started_at``, or its
    fixed points), L-BFGS on the method's objective. An inverse run's unknown θ is converted with
    the network and shared by the phase's problem, so the phase trains and records the estimate."""
    dtype = setup.finish.dtype(setup.dtype)
    problem = setup.finish_problem or setup.problem
    trainee.model.to(dtype)  # in place: the parameters stay the same tensors
    theta = setup.problem.log_unknown
    if theta is not None and problem is not setup.problem:
        theta.data = theta.data.to(dtype)  # in place, as the network's: θ stays the tensor trainee.params holds
        problem.log_unknown = theta
    losses = GroupLosses(problem, trainee.model, setup.groups, setup.device, dtype)
    if setup.run.resample:
        losses.batches = LazyBatches(problem, trainee.generator, setup.run.seed, started_at)
    elif setup.finish_problem is None:
        losses.batches = trainee.fixed_points
    else:  # the run's fixed points, drawn again in the phase's dtype
        losses.batches = problem.sample(torch.Generator(setup.device).manual_seed(setup.run.seed + 1))
    losses.latest.copy_(trainee.losses.latest)
    phase = setup.finish.phase(trainee.params, lambda: trainee.method.objective(losses()), losses.latest)
    return phase, losses


# ----- where a run is, and its records ------------------------------------------------------------
class Run:
    """A run in progress: iterations done, the clock, the history, the test errors, the finishing
    phase once started; it resumes from and writes the records in ``run_dir``."""

    def __init__(self, setup: Setup, run_dir: Path, trainee: Trainee) -> None:
        self.setup, self.run_dir, self.trainee = setup, run_dir, trainee
        self.iteration, self.resumed_from = 0, 0
        self.history: list[dict[str, Any]] = []
        self.best, self.last_errors = math.inf, {}
        self.clock = Clock(0.0, setup.device, setup.run.budget.clock)
        self.config = resolved_config(setup)
        self.checkpoint_path = run_dir / records.CHECKPOINT
        self.finish_started_at: int | None = None
        self.finish_stopped: str | None = None
        self.phase: LBFGSPhase | None = None
        self.losses = trainee.losses  # the losses being trained: the phase's own once it starts
        self.diagnostics_seconds = 0.0
        self.lowest: dict[str, Any] = {}
        """With ``lowest_loss``: the lowest training loss so far (``lowest_loss``), its iteration and the
        test errors of that iterate (``lowest_loss_<error>``), see :meth:`track_lowest_loss`."""
        self.diagnosed: tuple[Tensor, Tensor] | None = None  # G and θ of the iteration being diagnosed

    # --- budget and phases
    @property
    def finishing(self) -> bool:
        return self.phase is not None

    def spent(self, budget: Budget) -> bool:
        return budget.exhausted(self.iteration, self.clock.seconds if budget.kind == "walltime" else 0.0)

    def main_spent(self) -> bool:
        """Whether a run with a finishing phase is done with its main phase."""
        return self.setup.finish.enabled and (self.finishing or self.spent(self.setup.main_budget))

    def start_finishing(self) -> None:
        if self.finish_started_at is None:
            self.finish_started_at = self.iteration
        self.phase, self.losses = finishing_phase(self.setup, self.trainee, self.finish_started_at)

    def learning_rate(self) -> float:
        """The main phase's scheduled learning rate for the coming iteration (``schedule``)."""
        run, budget = self.setup.run, self.setup.main_budget
        fraction = budget.progress(self.iteration + 1, self.clock.seconds) if budget.kind == "iterations" \
            else budget.progress(self.iteration, self.clock.seconds)
        return scheduled_lr(run.schedule, self.iteration, fraction, budget.warmup_fraction(), run.lr, run.final_lr)

    def diagnose(self) -> dict[str, Tensor]:
        """Conflict measures of the direction the method just set (:mod:`pinnbench.diagnostics`), off the
        clock; keeps the gradients and the parameters for :meth:`diagnose_step`."""
        self.clock.pause()
        started = time.perf_counter()
        trainee = self.trainee
        self.diagnosed = gradient_matrix(trainee.losses.each(), trainee.params), flat_params(trainee.params)
        diagnosis = conflict_measures(self.diagnosed[0], flat_grad(trainee.params), self.setup.loss_names)
        self.diagnostics_seconds += time.perf_counter() - started
        self.clock.start()
        return diagnosis

    def diagnose_step(self) -> dict[str, Tensor]:
        """After the optimiser's step that followed :meth:`diagnose`: the cosines of that step with the
        gradients :meth:`diagnose` kept (``cos_step_<a>``), off the clock."""
        self.clock.pause()
        started = time.perf_counter()
        G, before = self.diagnosed
        diagnosis = step_cosines(G, before - flat_params(self.trainee.params), self.setup.loss_names)
        self.diagnosed = None
        self.diagnostics_seconds += time.perf_counter() - started
        self.clock.start()
        return diagnosis

    def track_lowest_loss(self) -> None:
        """When the training loss of the iteration just done (the sum of the losses the method saw,
        on this iteration's points, before the step) is the lowest so far, the test errors of the
        network after the step, off the clock: the iterate Hwang & Lim (NeurIPS 2024, code
        ``model/*.py``) report, evaluated every time the loss improves, as they do."""
        total = float(self.losses.latest.sum())
        if not math.isfinite(total) or total >= self.lowest.get("lowest_loss", math.inf):
            return
        self.clock.pause()
        model = self.trainee.model
        model.eval()
        errors = (self.setup.finish_problem if self.finishing and self.setup.finish_problem
                  else self.setup.problem).error(model)
        model.train()
        self.lowest = {"lowest_loss": total, "lowest_loss_iteration": self.iteration,
                       **{f"lowest_loss_{k}": v for k, v in errors.items()}}
        self.clock.start()

    # --- records
    def add_row(self, lr: float, extra: dict[str, Tensor]) -> bool:
        """A history row for the iteration just done; False when a loss of the main phase is NaN/inf."""
        names = self.setup.loss_names
        row: dict[str, Any] = {"iteration": self.iteration, "seconds": self.clock.seconds, "lr": lr}
        if self.setup.finish.enabled:
            row["phase"] = FINISH if self.finishing else MAIN
        row.update({f"loss_{n}": v for n, v in zip(names, self.losses.latest.tolist())})
        for key, value in extra.items():
            values = value.tolist()
            row.update({f"{key}_{n}": v for n, v in zip(names, values)} if isinstance(values, list) else {key: values})
        self.history.append(row)
        return self.finishing or not bool(self.losses.nonfinite)

    def evaluate(self) -> None:
        """The test errors, in the last history row."""
        model = self.trainee.model
        model.eval()
        self.last_errors = (self.setup.finish_problem if self.finishing and self.setup.finish_problem
                            else self.setup.problem).error(model)
        model.train()
        self.best = min(self.best, self.last_errors["test_mse"])
        self.history[-1].update(self.last_errors)

    def save(self) -> None:
        """history.csv and checkpoint.pt, each written atomically."""
        trainee = self.trainee
        records.write_history(self.run_dir / records.HISTORY, self.history)
        records.save_checkpoint(self.checkpoint_path, {
            "model": trainee.model.state_dict(), "optimizer": trainee.optimizer.state_dict(),
            "method": trainee.method.state_dict(), "problem": self.setup.problem.state_dict(),
            "rng": _rng_state(trainee.generator),
            "iteration": self.iteration, "seconds": self.clock.seconds, "history": self.history,
            "best_test_mse": self.best, "last_errors": self.last_errors, "latest_losses": self.losses.latest.cpu(),
            "config": self.config, "lowest": self.lowest,
            **({"finish": {"started_at": self.finish_started_at,
                           "state": self.phase.state_dict() if self.phase else None}}
               if self.setup.finish.enabled else {}),
        })

    def resume(self) -> None:
        """Pick up the checkpoint in ``run_dir``, if any (refused when made with another configuration)."""
        if not self.checkpoint_path.exists():
            return
        state = records.load_checkpoint(self.checkpoint_path)
        check_same_config(self.run_dir, state.get("config"), self.config, records.CHECKPOINT,
                          schema_defaults(self.setup))
        trainee = self.trainee
        finishing = state.get("finish") or {}
        if finishing.get("state") is not None:  # inside the finishing phase: the network in its dtype first
            self.finish_started_at = finishing["started_at"]
            self.start_finishing()
        trainee.model.load_state_dict(state["model"])
        trainee.optimizer.load_state_dict(state["optimizer"])
        trainee.method.load_state_dict(state["method"])
        self.setup.problem.load_state_dict(state.get("problem", {}))
        if self.phase is not None:
            self.phase.load_state_dict(finishing["state"])
        _set_rng_state(state["rng"], trainee.generator)
        self.iteration, self.history = state["iteration"], state["history"]
        self.clock = Clock(state["seconds"], self.setup.device, self.setup.run.budget.clock)
        self.best, self.last_errors = state["best_test_mse"], state["last_errors"]
        self.lowest = state.get("lowest", {})
        self.finish_started_at = finishing.get("started_at")
        self.losses.latest.copy_(state["latest_losses"].to(self.losses.latest))
        self.resumed_from = self.iteration
        _say(f"{self.run_dir}: resuming from iteration {self.iteration} ({state['seconds']:.1f} s"
             + (", in the finishing phase)." if self.finishing else ")."))

    def summary(self, status: str) -> dict[str, Any]:
        setup, run, budget = self.setup, self.setup.run, self.setup.budget
        seconds = self.clock.seconds
        return {
            "problem": setup.problem.name, "n_losses": len(setup.groups),
            "method": trainer_label(setup.method_options.label, setup.optimizer.options.name, setup.finish.options.name),
            "losses": setup.loss_names, "seed": run.seed, "size": setup.problem.options.size,
            "budget": run.budget.kind, "budget_amount": budget.iterations if budget.kind == "iterations" else budget.seconds,
            **({"budget_from": "adam", "adam_run": run.budget.adam_run} if run.budget.adam_run else {}),
            "device": str(setup.device), "dtype": run.dtype, "status": status,
            "iterations": self.iteration, "seconds": seconds, "resumed_from": self.resumed_from,
            "ms_per_iteration": 1000 * seconds / self.iteration if self.iteration else None,
            "test_mse": self.last_errors.get("test_mse"), "best_test_mse": self.best if math.isfinite(self.best) else None,
            **{k: v for k, v in self.last_errors.items() if k != "test_mse"},
            **self.lowest,
            "iterations_this_session": self.iteration - self.resumed_from, "test_reference": setup.problem.scored_reference,
            "config": self.config,
            **({"optimizer": setup.optimizer.options.name} if setup.optimizer.options.name != "adam" else {}),
            **(self.finish_summary() if setup.finish.enabled else {}),
            **({"diagnostics_seconds": self.diagnostics_seconds,
                "diagnostics_overhead_percent": 100 * self.diagnostics_seconds / max(seconds, 1e-12)}
               if run.diagnostics.conflict_every else {}),
            "provenance": provenance(setup.device),
        }

    def finish_summary(self) -> dict[str, Any]:
        started = self.finish_started_at
        return {"finish": self.setup.finish.options.name, "finish_started_at": started,
                "finish_iterations": None if started is None else self.iteration - started,
                "finish_evaluations": self.phase.evaluations if self.phase else None,
                "finish_stopped": self.finish_stopped}


def final_scores(setup: Setup, run: Run) -> dict[str, float]:
    """What tuning selects on, at the end of a run: the validation errors (``val_rel_l2``,
    ``val_mse``) and the label-free objective (``label_free``, the training losses summed on
    fresh points)."""
    problem = setup.finish_problem if run.finishing and setup.finish_problem else setup.problem
    model = run.trainee.model
    model.eval()
    try:
        return {**problem.validation_errors(model), "label_free": problem.label_free(model, setup.groups)}
    finally:
        model.train()


def _finished(run_dir: Path) -> dict[str, Any] | None:
    """The summary of a run that completed or diverged before (nothing is left to do), else None."""
    summary = records.read_summary(run_dir)
    if summary is None or summary.get("status") not in (COMPLETED, DIVERGED):
        return None
    _say(f"{run_dir}: already {summary['status']} ({summary['iterations']} iterations, "
         f"test MSE {summary['test_mse']:.3e}); nothing to do.")
    return {**summary, "skipped": True}


def train(setup: Setup, run_dir: str | Path, on_iteration: Callable[[int], None] | None = None,
          study_dir: str | Path | None = None) -> dict[str, Any]:
    """Train (or resume, or skip) the run in ``run_dir``; returns its summary.

    ``on_iteration(i)`` is called after every iteration i (1-based); tests use it to interrupt.
    ``study_dir``: the sweep (or study) directory the run belongs to, which groups its tracker runs
    (default: the run directory's parent).
    """
    run_dir = Path(run_dir)
    done = _finished(run_dir)
    if done is not None:
        return done
    trainee = build(setup)
    run = Run(setup, run_dir, trainee)
    run.resume()
    trackers = Trackers(setup.trackers, Where(run_dir, Path(study_dir) if study_dir is not None else run_dir.parent))
    trackers.open(run.config, run.history)  # a resumed run continues its tracker runs from its checkpoint
    try:
        return _train(setup, run, trackers, on_iteration)
    finally:
        trackers.close(None)  # interrupted (a finished run has closed them already)


def _train(setup: Setup, run: Run, trackers: Trackers, on_iteration: Callable[[int], None] | None) -> dict[str, Any]:
    """The loop of :func:`train`, then the run's summary (and its figure) recorded and sent."""
    trainee, run_dir = run.trainee, run.run_dir
    settings, names = setup.run, setup.loss_names
    progress = tqdm(total=setup.budget.iterations if setup.budget.kind == "iterations" else None,
                    initial=run.iteration, disable=settings.quiet, desc=f"{setup.problem.name}/{setup.method_options.label}",
                    dynamic_ncols=True, file=sys.stdout)
    if run.iteration == 0 and not run.history:
        run.history.append({"iteration": 0, "seconds": 0.0, "lr": 0.0, **({"phase": MAIN} if setup.finish.enabled else {})})
        run.evaluate()
    status, conflict_every = COMPLETED, settings.diagnostics.conflict_every
    run.clock.start()
    final, main_over = run.spent(setup.budget), run.main_spent()  # decided once per iteration: see below
    while not final:
        if main_over and not run.finishing:
            run.start_finishing()
        if run.finishing:  # one L-BFGS iteration; the phase may end early (a failed line search, NaN)
            run.finish_stopped = run.phase.step()
            lr, diagnosed, step_record = setup.finish.options.lr, False, {"evaluations": run.phase.evaluations}
        else:
            lr = run.learning_rate()
            diagnosed = conflict_every > 0 and (run.iteration + 1) % conflict_every == 0
            step_record = main_step(setup, trainee, run.iteration, lr, run.diagnose if diagnosed else None)
            if diagnosed:
                step_record.update(run.diagnose_step())
        run.iteration += 1
        if settings.lowest_loss:
            run.track_lowest_loss()
        if on_iteration is not None:
            on_iteration(run.iteration)
        # the budget is decided once per iteration, so the iteration that ends it (or the main phase) is recorded
        final = run.spent(setup.budget) or run.finish_stopped is not None
        ends_main = not main_over and run.main_spent()
        main_over = main_over or ends_main
        evaluate = run.iteration % settings.eval_every == 0 or final or ends_main
        save = run.iteration % settings.checkpoint_every == 0 or final or ends_main
        if not (evaluate or save or diagnosed or run.iteration % settings.log_every == 0):
            continue
        extra = {**trainee.method.record(), **setup.problem.record(), **step_record}  # only for a recorded row
        healthy = run.add_row(lr, {k: torch.as_tensor(v).detach().clone() for k, v in extra.items()})
        run.clock.pause()
        if not healthy:
            status = DIVERGED
            break
        if evaluate:
            run.evaluate()
        progress.update(run.iteration - progress.n)
        progress.set_postfix({**{n: f"{v:.2e}" for n, v in zip(names, run.losses.latest.tolist())},
                              "test_mse": f"{run.last_errors.get('test_mse', math.nan):.2e}"}, refresh=False)
        if save:
            run.save()
            trackers.send(run.history)  # after the checkpoint: a tracker never holds a step it lacks
        run.clock.start()
    run.clock.pause()
    progress.close()

    if status == DIVERGED:
        records.write_history(run_dir / records.HISTORY, run.history)
        trackers.send(run.history)  # a diverged run is over: its rows after the last checkpoint too
        _say(f"error: training diverged (a loss became NaN or inf) by iteration {run.iteration}; "
             f"records kept in {run_dir}, the last good checkpoint is iteration "
             f"{records.load_checkpoint(run.checkpoint_path)['iteration'] if run.checkpoint_path.exists() else 0}.")
    if run.finish_stopped is not None:
        _say(f"{run_dir}: the finishing phase ended at iteration {run.iteration}: {run.finish_stopped}.")
    summary = {**run.summary(status), **(final_scores(setup, run) if status == COMPLETED else {})}
    trackers.finish(summary)
    if trackers.state:  # what each tracker holds, a failed one's too
        summary["trackers"] = {name: dict(state) for name, state in trackers.state.items()}
    records.write_json(run_dir / records.SUMMARY, summary)
    if settings.plot and status == COMPLETED:
        from pinnbench.fieldplot import plot_after_training

        figure = plot_after_training(setup.finish_problem if run.finishing and setup.finish_problem else setup.problem,
                                     trainee.model, run_dir)
        trackers.figure(figure, run.iteration)
    trackers.close(status)
    return summary
