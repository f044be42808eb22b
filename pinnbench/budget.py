"""Training budgets: a number of iterations or a wall-clock time.

The clock counts training time only: it is paused while the model is evaluated on the test grid,
checkpointed or diagnosed, so runs compared at equal time get equal training time.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch

from pinnbench.errors import ConfigError

KINDS = ("iterations", "walltime")
CLOCKS = ("wall", "process")


@dataclass
class BudgetConfig:
    """``kind: iterations`` with ``iterations: N`` (null: the problem size's default), or
    ``kind: walltime`` with ``seconds: S``, or ``seconds: adam``: the training seconds of the
    completed Adam run of the same setting (see :func:`adam_seconds`)."""

    kind: str = "iterations"
    iterations: Optional[int] = None
    seconds: Any = None
    adam_run: Optional[str] = None
    """Set by ``seconds: adam``: the Adam run whose training seconds ``seconds`` now holds."""
    clock: str = "wall"
    """What a training second is: ``wall`` (elapsed time, the paper's) or ``process`` (CPU time of
    this process, ``time.process_time``: on a shared CPU machine, with one thread per run, it is
    nearly unchanged by other work, where wall time grows with the load; CPU only)."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"budget.kind={self.kind!r} is not a budget; allowed: {', '.join(KINDS)}.")
        if self.clock not in CLOCKS:
            raise ConfigError(f"budget.clock={self.clock!r} is not a clock; allowed: {', '.join(CLOCKS)}.")
        if self.iterations is not None and self.iterations <= 0:
            raise ConfigError(f"budget.iterations={self.iterations} must be a positive integer.")
        if self.kind == "walltime" and self.seconds != "adam":
            given = self.seconds
            try:
                self.seconds = float(given)
            except (TypeError, ValueError):
                self.seconds = math.nan
            if not math.isfinite(self.seconds) or self.seconds <= 0:
                raise ConfigError(f"budget.seconds={given} must be a positive number of seconds, or adam (the "
                                  f"time of the Adam run of the same setting), for budget=walltime.")

    @property
    def amount(self) -> float:
        return self.iterations if self.kind == "iterations" else self.seconds


def adam_seconds(adam_dir: Path, device: str, clock: str = "wall") -> float:
    """The training seconds of the completed Adam run in ``adam_dir`` (the paper's equal-time
    budget); a :class:`ConfigError` naming the run when there is none, it did not complete, or it
    ran on another device or clock."""
    from pinnbench import records

    summary = records.read_summary(adam_dir)
    if summary is None or summary.get("status") != "completed":
        state = "does not exist" if summary is None else f"is {summary.get('status')}"
        raise ConfigError(f"budget.seconds=adam: the Adam run {adam_dir} {state}; run the equal-iteration "
                          f"sweep (or that run) first.")
    if summary.get("device") != device:
        raise ConfigError(f"budget.seconds=adam: the Adam run {adam_dir} ran on {summary.get('device')}, "
                          f"this run on {device}; their times are not comparable.")
    return float(summary["seconds"])


class Clock:
    """A stopwatch that can be paused; on a GPU it waits for queued work before reading. ``kind``:
    ``wall`` (``time.perf_counter``) or ``process`` (``time.process_time``, this process's CPU time)."""

    def __init__(self, elapsed: float = 0.0, device: torch.device | None = None, kind: str = "wall") -> None:
        self.elapsed_before = elapsed
        self.started: float | None = None
        self.cuda = device is not None and device.type == "cuda"
        self.read = time.process_time if kind == "process" else time.perf_counter

    def _now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return self.read()

    def start(self) -> None:
        if self.started is None:
            self.started = self._now()

    def pause(self) -> None:
        if self.started is not None:
            self.elapsed_before += self._now() - self.started
            self.started = None

    @property
    def seconds(self) -> float:
        running = 0.0 if self.started is None else self._now() - self.started
        return self.elapsed_before + running


class Budget:
    """Decides when training stops and how far along the learning-rate schedule it is.

    ``progress`` is the fraction of the budget used: iterations done / N, or seconds / S; the
    schedule is a function of it, so a wall-clock run still reaches the end of its schedule.
    """

    def __init__(self, config: BudgetConfig, iterations: int) -> None:
        self.kind = config.kind
        self.iterations = iterations
        self.seconds = config.seconds

    def shortened(self, iterations: int = 0, share: float = 0.0) -> "Budget":
        """This budget less a finishing phase's part: its last ``iterations`` iterations, or the last
        ``share`` of its seconds, whichever its kind counts."""
        part = copy.copy(self)
        if self.kind == "iterations":
            part.iterations = self.iterations - iterations
        else:
            part.seconds = self.seconds * (1.0 - share)
        return part

    def progress(self, iteration: int, seconds: float) -> float:
        if self.kind == "iterations":
            return iteration / self.iterations
        return min(seconds / self.seconds, 1.0)

    def exhausted(self, iteration: int, seconds: float) -> bool:
        if self.kind == "iterations":
            return iteration >= self.iterations
        return seconds >= self.seconds

    def warmup_fraction(self) -> float:
        """Linear warm-up over min(100 iterations, 1 % of the budget) (the paper's protocol)."""
        if self.kind == "iterations":
            return min(100, max(1, int(0.01 * self.iterations))) / self.iterations
        return 0.01


def cosine_with_warmup(progress: float, warmup: float, lr: float, final_lr: float) -> float:
    """lr·p/w during warm-up (p < w), then final + (lr − final)(1 + cos(π (p − w)/(1 − w)))/2."""
    if progress < warmup:
        return lr * progress / warmup
    phase = min((progress - warmup) / max(1.0 - warmup, 1e-12), 1.0)
    return final_lr + (lr - final_lr) * 0.5 * (1.0 + math.cos(math.pi * phase))


def exponential_decay(iteration: int, lr: float, rate: float, steps: int, staircase: bool = False) -> float:
    """lr · rate^(i/steps) at iteration i (0-based), or lr · rate^⌊i/steps⌋ with ``staircase``
    (TensorFlow's ``exponential_decay``, PyTorch's ``StepLR`` stepped once per iteration)."""
    exponent = iteration // steps if staircase else iteration / steps
    return lr * rate**exponent


def scheduled_lr(schedule: Any, iteration: int, progress: float, warmup: float, lr: float, final_lr: float) -> float:
    """The learning rate of ``schedule`` (:class:`~pinnbench.settings.ScheduleConfig`) for the coming
    iteration (0-based ``iteration``, budget fraction ``progress``)."""
    rules = {"cosine": lambda: cosine_with_warmup(progress, warmup, lr, final_lr),
             "exponential": lambda: exponential_decay(iteration, lr, schedule.rate, schedule.steps, schedule.staircase)}
    return rules[schedule.kind]()
