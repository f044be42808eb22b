"""The training loop: one run = one problem, one method, one budget, one seed.

:func:`prepare` validates the whole configuration and builds every object before any training;
:func:`train` runs (or resumes, or skips) the run in its directory and returns its summary.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from omegaconf import DictConfig
from torch import Tensor
from tqdm import tqdm

from pinnbench import records
from pinnbench.allocator import keep_freed_memory
from pinnbench.budget import Budget, Clock, cosine_with_warmup
from pinnbench.diagnostics import conflict_measures, flat_grad
from pinnbench.errors import ConfigError
from pinnbench.methods.base import Method, gradient_matrix
from pinnbench.network import MLP
from pinnbench.settings import DTYPES, RunConfig, run_options, typed_options
from problems.base import Batch, LazyBatches, Problem
from problems.derivatives import derivative_mode

COMPLETED, DIVERGED = "completed", "diverged"


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

    @property
    def loss_names(self) -> list[str]:
        return [Problem.group_name(g) for g in self.groups]


def prepare(cfg: DictConfig) -> Setup:
    """Validate ``cfg`` and build the problem; raises :class:`ConfigError` on bad input."""
    run = run_options(cfg)
    device, dtype = torch.device(run.device), DTYPES[run.dtype]
    problem_cls, problem_options = typed_options("problem", run.problem)
    method_cls, method_options = typed_options("method", run.method)
    problem: Problem = problem_cls(problem_options, device=device, dtype=dtype)
    groups = problem.groups(run.n_losses)
    if hasattr(method_options, "validate"):
        method_options.validate(len(groups))
    iterations = run.budget.iterations or problem.size.iterations
    problem.fast = derivative_mode(run.fast, run.compile, iterations if run.budget.kind == "iterations" else None,
                                   run.budget.seconds if isinstance(run.budget.seconds, float) else None)
    if run.budget.clock == "process" and device.type != "cpu":
        raise ConfigError("budget.clock=process measures CPU time; on a GPU use budget.clock=wall.")
    problem.scored_reference  # says now, before any training, when the paper's reference file is missing
    return Setup(run, problem, method_cls, method_options, groups, Budget(run.budget, iterations), device, dtype)


UNRECORDED_KEYS = ("problem", "method", "quiet", "plot", "threads", "compile", "fast", "eval_every", "log_every",
                   "checkpoint_every", "diagnostics")
"""Run settings that change neither what is trained nor its result (``fast`` and ``compile`` change
only float rounding); they are left out of a run's recorded configuration."""


def _plain(config: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(config, default=lambda o: dataclasses.asdict(o) if dataclasses.is_dataclass(o)
                                 else str(o)))


def resolved_config(setup: Setup) -> dict[str, Any]:
    """The configuration that decides a run's result, every default filled in: the problem's and
    the method's typed options and the run settings but :data:`UNRECORDED_KEYS`. Recorded in the
    summary and the checkpoint, and compared on a relaunch."""
    run = {f.name: getattr(setup.run, f.name) for f in dataclasses.fields(setup.run) if f.name not in UNRECORDED_KEYS}
    return _plain({"problem": setup.problem.options, "method": setup.method_options, **run})


def schema_defaults(setup: Setup) -> dict[str, Any]:
    """:func:`resolved_config` of the schemas' own defaults (each Options and RunConfig field's
    default value): a key a recorded configuration lacks (an option added since) counts as
    unchanged when the run now uses this value, so a new option must default to the old behaviour."""
    run = dataclasses.replace(RunConfig(), problem=None, method=None)
    plain = {f.name: getattr(run, f.name) for f in dataclasses.fields(run) if f.name not in UNRECORDED_KEYS}
    return _plain({"problem": type(setup.problem.options)(), "method": type(setup.method_options)(), **plain})


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(node, dict):
        return {prefix: node}
    return {k: v for key, value in node.items() for k, v in _flatten(value, f"{prefix}{key}.").items()} \
        if node else {prefix: {}}


def config_differences(recorded: dict[str, Any] | None, now: dict[str, Any],
                       defaults: dict[str, Any] | None = None) -> list[str]:
    """``key: recorded → now`` for every key whose value differs (a key missing on one side too,
    unless it is missing from the record and now has its ``defaults`` value)."""
    if recorded is None:
        return ["the run was made before run configurations were recorded"]
    old, new, default = _flatten(recorded), _flatten(now), _flatten(defaults or {})
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


def own_param_groups(optimizer: torch.optim.Optimizer, groups: list[dict], lr: float) -> None:
    """Move each of ``groups``' parameters (a problem's, e.g. an inverse run's unknown) out of the
    optimiser's groups into a group of its own, whose learning rate is the run's schedule scaled by
    ``lr_scale`` = group["lr"] / ``lr`` (so it peaks at group["lr"])."""
    for group in groups:
        moved = {id(p) for p in group["params"]}
        for existing in optimizer.param_groups:
            existing["params"] = [p for p in existing["params"] if id(p) not in moved]
        optimizer.add_param_group({"params": group["params"], "lr": group["lr"], "lr_scale": group["lr"] / lr})


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


def train(setup: Setup, run_dir: str | Path, on_iteration: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Train (or resume, or skip) the run in ``run_dir``; returns its summary.

    ``on_iteration(i)`` is called after every iteration i (1-based); tests use it to interrupt.
    """
    run_dir = Path(run_dir)
    run, problem, budget = setup.run, setup.problem, setup.budget
    summary = records.read_summary(run_dir)
    if summary is not None and summary.get("status") in (COMPLETED, DIVERGED):
        _say(f"{run_dir}: already {summary['status']} ({summary['iterations']} iterations, "
             f"test MSE {summary['test_mse']:.3e}); nothing to do.")
        summary["skipped"] = True
        return summary

    _seed_everything(run.seed)
    if run.threads:
        torch.set_num_threads(run.threads)
    if setup.device.type == "cpu":
        keep_freed_memory()  # reuse freed activations instead of page-faulting fresh ones every iteration
    model = MLP(problem.input_dim, problem.output_dim, problem.size.width, problem.size.hidden_layers)
    model = model.to(setup.device, setup.dtype)
    unknowns = problem.param_groups()  # an inverse problem's parameters: trained with the network, at their own rate
    params = [p for p in model.parameters()] + [p for group in unknowns for p in group["params"]]
    method: Method = setup.method_cls(setup.method_options, len(setup.groups), params)
    optimizer = method.make_optimizer(run.lr)
    own_param_groups(optimizer, unknowns, run.lr)
    generator = torch.Generator(device=setup.device)
    generator.manual_seed(run.seed)
    losses = GroupLosses(problem, model, setup.groups, setup.device, setup.dtype)
    fixed_points = None if run.resample else problem.sample(torch.Generator(setup.device).manual_seed(run.seed + 1))

    iteration, seconds, history, best, last_errors = 0, 0.0, [], math.inf, {}
    checkpoint_path = run_dir / records.CHECKPOINT
    resumed_from = 0
    config = resolved_config(setup)
    if checkpoint_path.exists():
        state = records.load_checkpoint(checkpoint_path)
        check_same_config(run_dir, state.get("config"), config, records.CHECKPOINT, schema_defaults(setup))
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        method.load_state_dict(state["method"])
        problem.load_state_dict(state.get("problem", {}))
        _set_rng_state(state["rng"], generator)
        iteration, seconds, history = state["iteration"], state["seconds"], state["history"]
        best, last_errors = state["best_test_mse"], state["last_errors"]
        losses.latest.copy_(state["latest_losses"].to(losses.latest))
        resumed_from = iteration
        _say(f"{run_dir}: resuming from iteration {iteration} ({seconds:.1f} s).")

    clock = Clock(seconds, setup.device, run.budget.clock)
    conflict_every, diagnostics_seconds = run.diagnostics.conflict_every, 0.0
    names = setup.loss_names
    pending: list[tuple[int, float, float, Tensor, dict[str, Tensor]]] = []
    status = COMPLETED

    def flush() -> bool:
        """Move pending rows into the history; False if a loss became NaN/inf."""
        for it, secs, lr, latest, extra in pending:
            row: dict[str, Any] = {"iteration": it, "seconds": secs, "lr": lr}
            row.update({f"loss_{n}": v for n, v in zip(names, latest.tolist())})
            for key, value in extra.items():
                values = value.tolist()
                row.update({f"{key}_{n}": v for n, v in zip(names, values)} if isinstance(values, list) else {key: values})
            history.append(row)
        pending.clear()
        return not bool(losses.nonfinite)

    def evaluate() -> None:
        nonlocal best, last_errors
        model.eval()
        last_errors = problem.error(model)
        model.train()
        best = min(best, last_errors["test_mse"])
        history[-1].update(last_errors)

    def save_state() -> None:
        records.write_history(run_dir / records.HISTORY, history)
        records.save_checkpoint(checkpoint_path, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "method": method.state_dict(),
            "problem": problem.state_dict(),
            "rng": _rng_state(generator), "iteration": iteration, "seconds": clock.seconds, "history": history,
            "best_test_mse": best, "last_errors": last_errors, "latest_losses": losses.latest.cpu(),
            "config": config,
        })

    def summarize(status: str) -> dict[str, Any]:
        done = iteration - resumed_from
        return {
            "problem": problem.name, "method": setup.method_options.label, "n_losses": len(setup.groups),
            "losses": names, "seed": run.seed, "size": problem.options.size,
            "budget": run.budget.kind, "budget_amount": budget.iterations if budget.kind == "iterations" else budget.seconds,
            **({"budget_from": "adam", "adam_run": run.budget.adam_run} if run.budget.adam_run else {}),
            "device": str(setup.device), "dtype": run.dtype, "status": status,
            "iterations": iteration, "seconds": clock.seconds, "resumed_from": resumed_from,
            "ms_per_iteration": 1000 * clock.seconds / iteration if iteration else None,
            "test_mse": last_errors.get("test_mse"), "best_test_mse": best if math.isfinite(best) else None,
            **{k: v for k, v in last_errors.items() if k != "test_mse"},
            "iterations_this_session": done, "test_reference": problem.scored_reference, "config": config,
            **({"diagnostics_seconds": diagnostics_seconds,
                "diagnostics_overhead_percent": 100 * diagnostics_seconds / max(clock.seconds, 1e-12)}
               if conflict_every else {}),
        }

    progress = tqdm(total=budget.iterations if budget.kind == "iterations" else None, initial=iteration,
                    disable=run.quiet, desc=f"{problem.name}/{setup.method_options.label}", dynamic_ncols=True,
                    file=sys.stdout)
    warmup = budget.warmup_fraction()
    if iteration == 0 and not history:
        history.append({"iteration": 0, "seconds": 0.0, "lr": 0.0})
        evaluate()
    clock.start()
    final = budget.exhausted(iteration, clock.seconds if budget.kind == "walltime" else 0.0)
    while not final:  # decided once per iteration, so the iteration that ends the budget is always recorded
        fraction = budget.progress(iteration + 1, clock.seconds) if budget.kind == "iterations" \
            else budget.progress(iteration, clock.seconds)
        lr = cosine_with_warmup(fraction, warmup, run.lr, run.final_lr)
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        losses.batches = fixed_points or LazyBatches(problem, generator, run.seed, iteration)
        optimizer.zero_grad(set_to_none=True)
        method.step(losses)
        diagnosed = conflict_every > 0 and (iteration + 1) % conflict_every == 0
        if diagnosed:
            clock.pause()
            started = time.perf_counter()
            diagnosis = conflict_measures(gradient_matrix(losses.each(), params), flat_grad(params), names)
            diagnostics_seconds += time.perf_counter() - started
            clock.start()
        optimizer.step()
        iteration += 1
        if on_iteration is not None:
            on_iteration(iteration)
        final = budget.exhausted(iteration, clock.seconds if budget.kind == "walltime" else 0.0)
        log_now = iteration % run.log_every == 0 or iteration % run.eval_every == 0 \
            or iteration % run.checkpoint_every == 0 or final or diagnosed
        if not log_now:
            continue
        extra = {k: v.detach().clone() for k, v in {**method.record(), **problem.record()}.items()}
        pending.append((iteration, clock.seconds, lr, losses.latest.clone(), {**extra, **diagnosis} if diagnosed else extra))
        clock.pause()
        if not flush():
            status = DIVERGED
            break
        if iteration % run.eval_every == 0 or final:
            evaluate()
        progress.update(iteration - progress.n)
        progress.set_postfix({**{n: f"{v:.2e}" for n, v in zip(names, losses.latest.tolist())},
                              "test_mse": f"{last_errors.get('test_mse', math.nan):.2e}"}, refresh=False)
        if iteration % run.checkpoint_every == 0 or final:
            save_state()
        clock.start()
    clock.pause()
    progress.close()

    if status == DIVERGED:
        records.write_history(run_dir / records.HISTORY, history)
        _say(f"error: training diverged (a loss became NaN or inf) by iteration {iteration}; "
             f"records kept in {run_dir}, the last good checkpoint is iteration "
             f"{records.load_checkpoint(checkpoint_path)['iteration'] if checkpoint_path.exists() else 0}.")
    summary = summarize(status)
    records.write_json(run_dir / records.SUMMARY, summary)
    if run.plot and status == COMPLETED:
        from pinnbench.fieldplot import plot_after_training

        plot_after_training(problem, model, run_dir)
    return summary
