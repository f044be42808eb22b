"""``pinnbench bench``: how fast is a training iteration, and against what.

For one problem at its paper size (network and points per iteration) and a list of methods, this
times two implementations of every method's iteration, side by side in one process:

* **ours** — the trainer's own step (:mod:`pinnbench.train`): lazily drawn points, Taylor-stream
  derivatives (compiled kernels when ``compile`` resolves to true), per-loss gradients from separate
  loss scalars into a preallocated matrix, the method's ``step``, the optimiser;
* **straightforward** — the same step written as the paper's public code writes it: every term's
  points drawn every iteration, nested autograd for the derivatives (``fast=false``), and for a
  gradient method each loss back-propagated on its own with ``loss.backward()`` and its gradient
  flattened from ``p.grad`` by hand before the method's aggregator combines them. (Our nested
  autograd takes all first derivatives of an output in one reverse pass; the paper's code takes one
  pass per derivative, so the ratios against this baseline are conservative.) Methods that are not
  gradient methods run their own ``step`` on straightforwardly computed losses.

Optimisers (``bench.optimizers``) are timed beside Adam: Adam's method (the plain sum) stepped by
each one (``adam+soap``, ``adam+muon``, …), ours only; ``× our Adam`` is then the cost of the
optimiser's step over Adam's, as every other part of the iteration is the same. An optimiser whose
optional library is not installed is skipped with a note.

Protocol: every variant runs ``warmup`` untimed iterations (the first one, which compiles the
kernels, is reported as ``first_iteration_s``); then ``rounds`` rounds, each timing ``iterations``
consecutive iterations (rounded up to a multiple of the number of losses, as M-ConFIG's cost
cycles with them) of every variant in turn, the order rotated from round to round; the reported
time is the median over rounds. The machine's dense matmul throughput (a 2048 × 2048 product in
the run's dtype) is measured once per round between the variants and its median reported.

Counts: ``gflop_per_iter`` is the dense matmul work an iteration executes — 2·M·K·N for every
``mm``/``addmm``/``bmm`` the PyTorch profiler records over one cycle of iterations, forward,
derivative and backward passes alike (pointwise work not counted) — and ``matmul_share`` is the
throughput this reaches (gflop_per_iter / time) as a fraction of the measured dense throughput.
``peak_memory_mb``: on a GPU, ``torch.cuda.max_memory_allocated`` over one cycle above what was
allocated before it; on a CPU, the growth of the process's resident set over one cycle (Linux:
freed heap memory returned with ``malloc_trim``, the high-water mark reset through
``/proc/self/clear_refs``, then VmHWM − VmRSS), so it includes allocator overhead; None where
the platform offers neither.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import math
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence

import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import Tensor

from pinnbench.allocator import keep_freed_memory
from pinnbench.errors import ConfigError
from pinnbench.methods.base import GradientMethod, Method, write_gradient
from pinnbench.naming import trainer_label
from pinnbench.network import network_for
from pinnbench.settings import RunConfig
from pinnbench.train import GroupLosses, Setup, _seed_everything, prepare
from problems.base import Batch, LazyBatches, Problem

OURS, STRAIGHTFORWARD = "ours", "straightforward"


@dataclass
class BenchOptions:
    """The ``bench:`` keys of ``configs/bench.yaml``."""

    methods: List[str] = field(default_factory=lambda: ["adam", "config", "mconfig"])
    problems: List[str] = field(default_factory=list)
    """Problems (files of configs/problem/) timed one after the other, each with every method, into one
    table; empty: the run's ``problem=`` only."""
    optimizers: List[str] = field(default_factory=lambda: ["soap", "muon", "psgd"])
    """Optimisers (files of configs/optimizer/) timed beside Adam, each stepping the plain sum (method adam)."""
    size: str = "paper"  # the problem size to time
    iterations: int = 12  # timed iterations per round and variant (rounded up to a multiple of n_losses)
    rounds: int = 7  # the median is taken over rounds
    warmup: int = 6  # untimed iterations first (compilation happens here)
    baseline: bool = True  # also time the straightforward implementation
    memory: bool = True  # measure peak memory
    memory_cap_mb: float = 4096.0
    """A straightforward step whose peak memory, estimated from a probe at 1/PROBE of the points, would
    pass this is timed at a fraction of the points and scaled up (marked ≈ in the table); 0: no cap."""
    out: str = "bench.json"
    logger: str = "none"
    """A file of configs/logger/ whose tracker's cost per iteration is measured beside every method (none: not)."""
    logger_sends: int = 5
    """Hand-overs timed for the tracker (each of checkpoint_every / log_every history rows); the median is reported."""

    def __post_init__(self) -> None:
        if not self.methods:
            raise ConfigError("bench.methods is empty; name at least one file of configs/method/.")
        for key in ("iterations", "rounds"):
            if getattr(self, key) < 1:
                raise ConfigError(f"bench.{key}={getattr(self, key)} must be a positive integer.")
        if self.logger_sends < 1:
            raise ConfigError(f"bench.logger_sends={self.logger_sends} must be a positive integer.")
        if self.warmup < 0:
            raise ConfigError(f"bench.warmup={self.warmup} must not be negative.")
        if self.memory_cap_mb < 0:
            raise ConfigError(f"bench.memory_cap_mb={self.memory_cap_mb} must be 0 (no cap) or a number of MB.")


@dataclass
class BenchConfig(RunConfig):
    """``configs/bench.yaml``: the run keys (problem, dtype, n_losses, fast, compile, …) and ``bench``."""

    bench: BenchOptions = field(default_factory=BenchOptions)


def register_schema() -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="bench_schema", node=BenchConfig)


# ----- configuration ----------------------------------------------------------------------------
def compose(overrides: Sequence[str]) -> tuple[BenchOptions, dict[str, dict[str, DictConfig]]]:
    """(bench options, {problem: {method: its run configuration at the bench's size}}) for the overrides."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    from pinnbench.cli import _register, check_overrides, config_dir

    _register()
    register_schema()
    overrides = list(overrides)
    if any(o.split("=")[0].lstrip("+~") == "method" for o in overrides):
        raise ConfigError("bench times several methods: name them with bench.methods=[adam,config,...], not method=.")
    if any(o.split("=")[0].lstrip("+~") == "logger" for o in overrides):
        raise ConfigError("bench measures a tracker's cost with bench.logger=NAME, not logger=.")
    if any(o.split("=")[0].lstrip("+~") == "optimizer" for o in overrides):
        raise ConfigError("bench times several optimisers: name them with bench.optimizers=[soap,muon,...], "
                          "not optimizer=.")
    run_overrides = [o for o in overrides if not o.lstrip("+~").startswith("bench.")]
    bench_keys = [f.name for f in _fields(BenchOptions)]
    for o in overrides:
        key = o.lstrip("+~").split("=")[0]
        if key.startswith("bench.") and key[len("bench."):] not in bench_keys:
            raise ConfigError(f"{key} is not a bench setting; allowed: {', '.join('bench.' + k for k in bench_keys)}.")
    check_overrides(run_overrides + [o.replace("bench.logger=", "logger=", 1) for o in overrides
                                      if o.startswith("bench.logger=")])  # an unknown logger: the allowed ones

    def load(extra: list[str]) -> DictConfig:
        GlobalHydra.instance().clear()
        try:
            with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
                return hydra_compose("bench", overrides=overrides + extra)
        except HydraException as exc:
            message = " ".join(str(exc).split()).split(" Config search path")[0]
            if "bench." in message or "BenchOptions" in message:
                message += f" (bench keys: {', '.join(f.name for f in _fields(BenchOptions))})"
            raise ConfigError(message) from None
        finally:
            GlobalHydra.instance().clear()

    base = load([])
    options: BenchOptions = OmegaConf.to_object(base.bench)
    if options.problems and any(o.lstrip("+~").split("=")[0] == "problem" for o in overrides):
        raise ConfigError("give the problems either with problem=P or with bench.problems=[...], not both.")
    configs: dict[str, dict[str, DictConfig]] = {}
    for problem in options.problems or [base.problem.name]:
        chosen = [f"problem={problem}"] if options.problems else []
        configs[problem] = {}
        for name, method, optimizer in [(m, m, "adam") for m in options.methods] + \
                [(trainer_label("adam", o), "adam", o) for o in options.optimizers]:
            cfg = load(chosen + [f"method={method}", f"optimizer={optimizer}", f"problem.size={options.size}"])
            with open_dict(cfg):
                del cfg["bench"]
                cfg.logger = load([f"logger={options.logger}"]).logger if options.logger != "none" else None
            configs[problem][name] = cfg
    return options, configs


def _fields(cls: type) -> list:
    import dataclasses

    return dataclasses.fields(cls)


# ----- the two implementations of an iteration ----------------------------------------------------
class StraightforwardLosses:
    """The :class:`~pinnbench.methods.base.Losses` of the straightforward step: each loss computed
    on its own from points drawn for every term at the start of the iteration."""

    def __init__(self, problem: Problem, model: torch.nn.Module, groups) -> None:
        self.problem, self.model, self.groups = problem, model, groups
        self.n_losses = len(groups)
        self.batches: dict[str, Batch] = {}

    def each(self, indices: Sequence[int] | None = None) -> list[Tensor]:
        indices = range(self.n_losses) if indices is None else indices
        return [self.problem.group_loss(self.model, self.batches, self.groups[i]) for i in indices]

    def __call__(self, indices: Sequence[int] | None = None) -> Tensor:
        return torch.stack(self.each(indices))

    def residuals(self, index: int) -> list[Tensor]:
        return [self.problem.term_residual(self.model, self.batches[t], t) for t in self.groups[index]]


class Variant:
    """One method in one implementation, with its own model, method state and optimiser."""

    def __init__(self, setup: Setup, implementation: str) -> None:
        self.setup, self.implementation = setup, implementation
        self.name = trainer_label(setup.method_options.name, setup.optimizer.options.name)
        run, problem = setup.run, setup.problem
        _seed_everything(run.seed)
        self.model = network_for(problem, run.network).to(setup.device, setup.dtype)
        self.params = list(self.model.parameters())
        self.method: Method = setup.method_cls(setup.method_options, len(setup.groups), self.params)
        self.optimizer = self.method.make_optimizer(run.lr, setup.optimizer)
        self.generator = torch.Generator(device=setup.device).manual_seed(run.seed)
        self.iteration = 0
        self.fraction, self.estimated_mb = 1.0, None  # the share of the points timed (see points_fraction)
        self.twin: Variant | None = None  # the same step at half this share, for extrapolating (scale_record)
        self.full_points: dict[str, int] = {}  # the points per iteration a scaled variant stands for
        if implementation == OURS:
            self.losses = GroupLosses(problem, self.model, setup.groups, setup.device, setup.dtype)
            self._step = self._ours
        else:
            self.losses = StraightforwardLosses(problem, self.model, setup.groups)
            self._step = self._straightforward

    def step(self) -> None:
        self._step()
        self.iteration += 1

    def _ours(self) -> None:  # the body of pinnbench.train.train's loop
        self.losses.batches = LazyBatches(self.setup.problem, self.generator, self.setup.run.seed, self.iteration)
        self.optimizer.zero_grad(set_to_none=True)
        self.method.step(self.losses)
        self.optimizer.step()

    def _straightforward(self) -> None:
        self.losses.batches = self.setup.problem.sample(self.generator)
        self.optimizer.zero_grad(set_to_none=True)
        if isinstance(self.method, GradientMethod):
            rows = []
            for loss in self.losses.each():
                for p in self.params:
                    p.grad = None
                loss.backward()
                rows.append(torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                                       for p in self.params]))
            write_gradient(self.params, self.method.aggregate(torch.stack(rows)))
        else:
            self.method.step(self.losses)
        self.optimizer.step()


# ----- measurements ------------------------------------------------------------------------------
def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(device: torch.device, dtype: torch.dtype, n: int = 2048, repeats: int = 3) -> float:
    """Dense matmul throughput: the median of ``repeats`` n × n products, in GFLOP/s."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    times = []
    for _ in range(repeats):
        _synchronize(device)
        start = time.perf_counter()
        a @ b
        _synchronize(device)
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


@contextlib.contextmanager
def _quiet_stderr():
    """Silence the profiler's start/stop lines, which its C++ side writes to file descriptor 2."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


MATMULS = {"aten::mm": 0, "aten::addmm": 1, "aten::bmm": 0, "aten::baddbmm": 1}  # name: index of the left operand


def _matmul_flops(event) -> int:
    """2·M·K·N (times the batch) of one recorded matmul call."""
    first = MATMULS[event.name]
    shapes = event.input_shapes
    if not shapes or len(shapes) < first + 2:
        return 0
    a, b = shapes[first], shapes[first + 1]
    if len(a) == len(b) == 2:
        return 2 * a[0] * a[1] * b[1]
    if len(a) == len(b) == 3:
        return 2 * a[0] * a[1] * a[2] * b[2]
    return 0


def matmul_work(step: Callable[[], None], iterations: int, device: torch.device) -> tuple[float, float | None]:
    """Dense matmul work per iteration while ``step`` runs ``iterations`` times: FLOPs (2·M·K·N summed
    over the mm/addmm/bmm calls the profiler records) and the seconds those calls take themselves
    (their self time; on a GPU their kernels' time, None where the profiler gives none)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with _quiet_stderr(), profile(activities=activities, record_shapes=True) as prof:
        for _ in range(iterations):
            step()
        _synchronize(device)
    events = [e for e in prof.events() if e.name in MATMULS]
    flops = sum(_matmul_flops(e) for e in events)
    timing = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    micros = sum(getattr(e, timing, 0) or 0 for e in events)
    return flops / iterations, (micros / 1e6 / iterations if micros > 0 else None)


def _proc_status(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _release_free_memory() -> None:
    """Return the allocator's free memory to the OS (glibc), so that variants measured one after
    another do not pile their peaks up (nested autograd on Beltrami peaks at ~8 GB)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_memory_mb(step: Callable[[], None], iterations: int, device: torch.device) -> float | None:
    """Peak memory of ``iterations`` steps above the memory in use before them (module docstring)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        for _ in range(iterations):
            step()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    try:
        _release_free_memory()
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the resident-set high-water mark to the current resident set
    except OSError:
        return None
    before = _proc_status("VmRSS")
    for _ in range(iterations):
        step()
    peak = _proc_status("VmHWM")
    return None if before is None or peak is None else max(peak - before, 0) / 2**20


# ----- a memory cap for the straightforward step ----------------------------------------------------
PROBE = 16
"""The straightforward step's memory is first measured at 1/PROBE of the points per iteration."""


def points_fraction(estimated_mb: float | None, cap_mb: float) -> float:
    """The share of the points at which to time a step whose full-size peak is ``estimated_mb``: 1
    when it fits under ``cap_mb`` (or there is no cap or no estimate), else the largest 1/2^j that does."""
    if not cap_mb or estimated_mb is None or estimated_mb <= cap_mb:
        return 1.0
    fraction = 1.0
    while estimated_mb * fraction > cap_mb and fraction > 1 / 1024:
        fraction /= 2
    return fraction


def scale_points(cfg: DictConfig, fraction: float) -> None:
    """Every term's points per iteration of ``cfg``'s problem size times ``fraction`` (at least 1)."""
    points = cfg.problem.sizes[cfg.problem.size].points
    with open_dict(cfg):
        for term in points:
            points[term] = max(1, round(points[term] * fraction))


TIME_KEYS = ("ms_per_iter", "ms_per_iter_q1", "ms_per_iter_q3", "ms_per_iter_min", "cpu_ms_per_iter",
             "matmul_ms_per_iter", "peak_memory_mb")
"""Measurements with a fixed part per iteration (Python, kernel launches, allocator) beside the part
that grows with the points: extrapolated by a line through two point counts."""


def extrapolate(at_points: float | None, at_fewer: float | None, points: int, fewer: int, full: int) -> float | None:
    """The value at ``full`` points per iteration of a quantity measured at ``points`` and at ``fewer``,
    on the line a + b·(points) through the two readings (a fixed cost a, a cost b per point); None where
    the readings do not grow with the points (noise larger than the difference) or one is missing."""
    if at_points is None or at_fewer is None or not at_points > at_fewer or not points > fewer:
        return None
    return at_points + (at_points - at_fewer) / (points - fewer) * (full - points)


def scale_record(record: dict, fewer: dict, full_points: dict[str, int], estimated_mb: float | None) -> dict:
    """A record measured at a fraction of the points per iteration (and its twin ``fewer`` at about
    half that), extrapolated to ``full_points``: times and memory on the line through the two
    (:func:`extrapolate`), the matmul work in proportion to the points (every product's long
    dimension is the number of points); the shares are recomputed from the extrapolated values."""
    n, m, full = sum(record["points"].values()), sum(fewer["points"].values()), sum(full_points.values())
    scaled = dict(record, points_fraction=n / full, estimated_peak_memory_mb=estimated_mb,
                  measured_points=dict(record["points"]), points=dict(full_points))
    for key in TIME_KEYS:
        scaled[key] = extrapolate(record.get(key), fewer.get(key), n, m, full)
    scaled["gflop_per_iter"] = record["gflop_per_iter"] * full / n
    peak, ms, matmul_ms = record["machine_matmul_gflops"], scaled["ms_per_iter"], scaled["matmul_ms_per_iter"]
    scaled["gflops"] = scaled["gflop_per_iter"] / (ms / 1e3) if ms else None
    scaled["matmul_share"] = scaled["gflops"] / peak if ms else None
    scaled["matmul_ceiling"] = scaled["gflop_per_iter"] / (matmul_ms / 1e3) / peak if matmul_ms else None
    return scaled


def _straightforward_fraction(cfg: DictConfig, options: BenchOptions) -> tuple[float, float | None]:
    """(share of the points to time the straightforward step at, its estimated full-size peak MB)."""
    if not options.memory_cap_mb:
        return 1.0, None
    probe_cfg = cfg.copy()
    scale_points(probe_cfg, 1 / PROBE)
    probe = Variant(prepare(probe_cfg), STRAIGHTFORWARD)
    probe.step()
    measured = peak_memory_mb(probe.step, len(probe.setup.groups), probe.setup.device)
    del probe
    _release_free_memory()
    estimated = None if measured is None else measured * PROBE
    return points_fraction(estimated, options.memory_cap_mb), estimated


# ----- the benchmark ------------------------------------------------------------------------------
def _variants(options: BenchOptions, configs: dict[str, DictConfig], say: Callable[[str], None]) -> list[Variant]:
    """Ours for every configuration and, with ``options.baseline``, the straightforward twin of each
    method (an optimiser's step has none); an optimiser whose optional library is missing is skipped."""
    variants: list[Variant] = []
    for name, cfg in configs.items():
        try:
            setup = prepare(cfg)
        except ConfigError as exc:
            if name in options.methods:
                raise
            say(f"skipped {name}: {exc}")
            continue
        variants.append(Variant(setup, OURS))
        if options.baseline and name in options.methods:
            with open_dict(cfg):
                cfg.fast = False
            fraction, estimated = _straightforward_fraction(cfg, options)
            if fraction < 1:
                say(f"{name}/straightforward: about {estimated:.0f} MB per step estimated (from 1/{PROBE} of the "
                    f"points), above bench.memory_cap_mb={options.memory_cap_mb:g}; timed at {fraction:g} of the "
                    f"points and scaled up.")
                full_points = dict(cfg.problem.sizes[cfg.problem.size].points)
                half = cfg.copy()
                scale_points(half, fraction / 2)  # a second point count, for the fixed cost per iteration
                twin = Variant(prepare(half), STRAIGHTFORWARD)
                twin.fraction, twin.estimated_mb = fraction / 2, estimated
                scale_points(cfg, fraction)
            variant = Variant(prepare(cfg), STRAIGHTFORWARD)
            variant.fraction, variant.estimated_mb = fraction, estimated
            variants.append(variant)
            if fraction < 1:
                variant.twin, variant.full_points = twin, full_points
                variants.append(twin)
    return variants


def _first_seconds(variants: list[Variant], warmup: int, device: torch.device) -> dict[int, float]:
    """Warm every variant up (at least one step); the seconds of each one's first step."""
    first: dict[int, float] = {}
    for index, variant in enumerate(variants):
        for i in range(max(warmup, 1)):
            _synchronize(device)
            start = time.perf_counter()
            variant.step()
            _synchronize(device)
            if i == 0:
                first[index] = time.perf_counter() - start
    return first


def _time_rounds(variants: list[Variant], options: BenchOptions, timed: int, device: torch.device,
                 dtype: torch.dtype, say: Callable[[str], None]) -> tuple[dict, dict, float]:
    """Seconds per iteration of every variant in each round (wall and process clock), the variants
    taken in a rotated order each round; and the median matmul peak, measured mid-round."""
    wall: dict[int, list[float]] = {i: [] for i in range(len(variants))}
    cpu: dict[int, list[float]] = {i: [] for i in range(len(variants))}
    peaks = []
    for r in range(options.rounds):
        order = list(range(len(variants)))
        order = order[r % len(order):] + order[:r % len(order)]
        for position, index in enumerate(order):
            if position == len(order) // 2:
                peaks.append(matmul_gflops(device, dtype))
            variant = variants[index]
            _synchronize(device)
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(timed):
                variant.step()
            _synchronize(device)
            wall[index].append((time.perf_counter() - start) / timed)
            cpu[index].append((time.process_time() - start_cpu) / timed)
        say(f"  round {r + 1}/{options.rounds}: " + ", ".join(
            f"{v.name}/{v.implementation[:5]} {1e3 * wall[i][-1]:.1f} ms" for i, v in enumerate(variants)))
    return wall, cpu, statistics.median(peaks)


def _record(variant: Variant, wall: list[float], cpu: list[float], first_seconds: float, peak: float,
            options: BenchOptions, timed: int) -> dict:
    """One row of the bench table: the setting, the median time and its spread, flops and memory."""
    setup = variant.setup
    device = setup.device
    k = len(setup.groups)
    _release_free_memory()
    flops, matmul_seconds = matmul_work(variant.step, k, device)
    memory = peak_memory_mb(variant.step, k, device) if options.memory else None
    ms = 1e3 * statistics.median(wall)
    quartiles = statistics.quantiles(wall, n=4) if len(wall) > 1 else [wall[0]] * 3
    problem = setup.problem
    return {
        "problem": problem.name, "method": variant.name, "optimizer": setup.optimizer.options.name,
        "implementation": variant.implementation,
        "n_losses": k, "size": problem.options.size, "points": dict(problem.size.points),
        "width": problem.size.width, "hidden_layers": problem.size.hidden_layers,
        "derivatives": str(problem.fast), "dtype": setup.run.dtype, "device": str(device),
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "ms_per_iter": ms, "ms_per_iter_q1": 1e3 * quartiles[0], "ms_per_iter_q3": 1e3 * quartiles[2],
        "ms_per_iter_min": 1e3 * min(wall), "cpu_ms_per_iter": 1e3 * statistics.median(cpu),
        "first_iteration_s": first_seconds, "rounds": options.rounds, "iterations_per_round": timed,
        "gflop_per_iter": flops / 1e9, "gflops": flops / 1e9 / (ms / 1e3), "machine_matmul_gflops": peak,
        "matmul_share": flops / 1e9 / (ms / 1e3) / peak,
        "matmul_ms_per_iter": 1e3 * matmul_seconds if matmul_seconds else None,
        "matmul_ceiling": flops / 1e9 / matmul_seconds / peak if matmul_seconds else None,
        "peak_memory_mb": memory,
        "paper_iterations": problem.options.sizes["paper"].iterations if "paper" in problem.options.sizes else None,
    }


def run_bench(options: BenchOptions, configs: dict[str, DictConfig], say: Callable[[str], None] = print) -> list[dict]:
    """Time every method (ours and, if asked, straightforward); returns the records."""
    threads = {cfg.threads for cfg in configs.values()}.pop()  # the run key `threads`, the same for all
    if threads:
        torch.set_num_threads(threads)
    if any(torch.device(cfg.device).type == "cpu" for cfg in configs.values()):
        keep_freed_memory()  # as the trainer does; both implementations profit
    variants = _variants(options, configs, say)
    first = variants[0].setup
    device, dtype, problem = first.device, first.dtype, first.problem
    cycle = math.lcm(*(len(v.setup.groups) for v in variants))
    timed = math.ceil(options.iterations / cycle) * cycle
    say(f"pinnbench bench: {problem.name} at size {problem.options.size} (points {dict(problem.size.points)}, "
        f"network {problem.input_dim}→{problem.size.width}×{problem.size.hidden_layers}→{problem.output_dim}), "
        f"{dtype}, {device}, {torch.get_num_threads()} threads; {options.rounds} rounds × {timed} iterations per variant.")
    first_seconds = _first_seconds(variants, options.warmup, device)
    wall, cpu, peak = _time_rounds(variants, options, timed, device, dtype, say)
    records = {id(v): _record(v, wall[i], cpu[i], first_seconds[i], peak, options, timed) for i, v in enumerate(variants)}
    if options.logger != "none":
        for variant in variants:
            if variant.implementation == OURS and variant.twin is None:
                record = records[id(variant)]
                record.update(tracker_cost(variant, options.logger_sends))
                record["logger_percent_of_step"] = 100 * record["logger_ms_per_iter"] / record["ms_per_iter"]
    twins = {id(v.twin) for v in variants if v.twin is not None}
    return [scale_record(records[id(v)], records[id(v.twin)], v.full_points, v.estimated_mb) if v.twin is not None
            else records[id(v)] for v in variants if id(v) not in twins]


# ----- the cost of an experiment tracker ----------------------------------------------------------
def history_rows(variant: Variant, first: int, count: int, errors: dict[str, float]) -> list[dict[str, Any]]:
    """``count`` history rows shaped as the trainer records them for this variant (iteration,
    seconds, lr, each loss, the method's record, the test errors every ``eval_every``), from
    iteration ``first`` on in steps of ``log_every``."""
    run = variant.setup.run
    names = variant.setup.loss_names
    losses = dict(zip((f"loss_{n}" for n in names), variant.losses.latest.tolist()))
    recorded: dict[str, Any] = {}
    for key, value in {**variant.method.record(), **variant.setup.problem.record()}.items():
        values = torch.as_tensor(value).tolist()
        recorded.update({f"{key}_{n}": v for n, v in zip(names, values)} if isinstance(values, list) else {key: values})
    rows = []
    for i in range(first, first + count * run.log_every, run.log_every):
        rows.append({"iteration": i, "seconds": 1e-3 * i, "lr": run.lr, **losses, **recorded,
                     **(errors if i % run.eval_every == 0 else {})})
    return rows


def tracker_cost(variant: Variant, sends: int) -> dict[str, Any]:
    """What the tracker of ``variant``'s configuration (``bench.logger``) costs the training process:
    the trainer hands it the rows of one checkpoint interval (checkpoint_every / log_every rows) after
    each checkpoint; the median seconds of ``sends`` such hand-overs (after one untimed), divided by
    checkpoint_every, is its cost per iteration. Opening the tracker run (the configuration logged) is
    timed apart."""
    import tempfile

    from pinnbench.trackers import Where, flat_params, numbers
    from pinnbench.train import resolved_config

    setup, run = variant.setup, variant.setup.run
    per_send = max(run.checkpoint_every // run.log_every, 1)
    errors = {k: v for k, v in setup.problem.error(variant.model).items() if isinstance(v, float)}
    (cls, tracker_options), = setup.trackers
    with tempfile.TemporaryDirectory(prefix="pinnbench-bench-") as folder:
        where = Where(Path(folder) / "study" / "run", Path(folder) / "study")
        where.run_dir.mkdir(parents=True)
        tracker = cls(tracker_options, where)
        started = time.perf_counter()
        tracker.open(None, flat_params(resolved_config(setup)))
        opened = time.perf_counter() - started
        seconds = []
        for send in range(sends + 1):  # the first, untimed, pays the tracker's one-off costs (lazy imports, caches)
            rows = [{"iteration": r["iteration"], **numbers(r)}
                    for r in history_rows(variant, send * run.checkpoint_every, per_send, errors)]
            started = time.perf_counter()
            tracker.log_rows(rows)
            if send:
                seconds.append(time.perf_counter() - started)
        tracker.close("completed")
    return {"logger": cls.name, "logger_ms_per_iter": 1e3 * statistics.median(seconds) / run.checkpoint_every,
            "logger_open_s": opened, "logger_rows_per_send": per_send, "logger_sends": sends,
            "log_every": run.log_every, "checkpoint_every": run.checkpoint_every}


def _add_ratios(records: list[dict]) -> None:
    """Each record's times against the straightforward twin and our Adam of the same problem."""
    by_key = {(r["problem"], r["method"], r["implementation"]): r for r in records}
    for r in records:
        adam = by_key.get((r["problem"], "adam", OURS))
        base = by_key.get((r["problem"], r["method"], STRAIGHTFORWARD))
        ms = r["ms_per_iter"]  # None where a scaled straightforward time could not be extrapolated

        def ratio(other: dict | None) -> float | None:
            return ms / other["ms_per_iter"] if ms and other and other["ms_per_iter"] else None

        r["vs_straightforward"], r["vs_our_adam"] = ratio(base), ratio(adam)
        iterations = r["paper_iterations"]
        r["paper_run_minutes"] = ms * iterations / 6e4 if iterations and ms else None


def table(records: list[dict]) -> str:
    """The ratio table (Markdown) for our implementation of every method."""
    from tabulate import tabulate

    by_key = {(r["problem"], r["method"], r["implementation"]): r for r in records}
    rows = []
    for r in records:
        if r["implementation"] != OURS:
            continue
        base = by_key.get((r["problem"], r["method"], STRAIGHTFORWARD))

        def fmt(value: float | None, pattern: str, scaled: bool = False) -> str:
            return "–" if value is None else ("≈" if scaled else "") + pattern.format(value)

        scaled = bool(base and base.get("points_fraction", 1.0) < 1)
        rows.append([r["problem"], r["method"], r["n_losses"], fmt(r["ms_per_iter"], "{:.1f}"),
                     fmt(base["ms_per_iter"] if base else None, "{:.1f}", scaled),
                     fmt(r["vs_straightforward"], "{:.2f}×", scaled), fmt(r["vs_our_adam"], "{:.2f}×"),
                     fmt(r["gflop_per_iter"], "{:.2f}"), fmt(r["matmul_share"], "{:.0%}"),
                     fmt(r.get("matmul_ceiling"), "{:.0%}"),
                     fmt(r["peak_memory_mb"], "{:.0f}"),
                     fmt(base["peak_memory_mb"] if base else None, "{:.0f}", scaled),
                     fmt(r["paper_run_minutes"], "{:.1f}")])
    headers = ["problem", "method", "losses", "ms/iter", "straightforward ms/iter", "× straightforward", "× our Adam",
               "GFLOP/iter", "matmul share", "matmul ceiling", "peak MB", "straightforward peak MB", "paper run (min)"]
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def scaled_notes(records: list[dict]) -> list[str]:
    """One line per straightforward step timed at a fraction of the points (the ≈ cells of :func:`table`)."""
    return [f"≈ {r['problem']} {r['method']}: the straightforward step would need about "
            f"{r['estimated_peak_memory_mb']:.0f} MB (estimated at 1/{PROBE} of the points), above "
            f"bench.memory_cap_mb; timed and measured at {r['points_fraction']:.3g} and about half of the points per "
            f"iteration ({sum(r['measured_points'].values())} of {sum(r['points'].values())}), its time and memory "
            f"extrapolated to all of them on the line through the two (a fixed cost per iteration and a cost per "
            f"point; – where the two did not grow with the points), its matmul work in proportion to the points."
            for r in records if r["implementation"] == STRAIGHTFORWARD and r.get("points_fraction", 1.0) < 1]


def summary(records: list[dict]) -> str:
    """What was measured, in one paragraph per problem, and the notes on scaled cells."""
    lines = scaled_notes(records)
    for problem in dict.fromkeys(r["problem"] for r in records):
        rows = [x for x in records if x["problem"] == problem]
        r = rows[0]
        lines.append(
            f"{problem} ({r['size']} size), {r['dtype']}, {r['device']}, {r['threads']} threads, "
            f"torch {r['torch']}; median of {r['rounds']} rounds × {r['iterations_per_round']} iterations. "
            f"Dense matmul: {r['machine_matmul_gflops']:.0f} GFLOP/s (2048², {r['dtype']}). "
            f"Our first iteration (compilation included): "
            + ", ".join(f"{x['method']} {x['first_iteration_s']:.1f} s" for x in rows if x["implementation"] == OURS)
            + ". Paper run = ms/iter × the paper's iterations.")
        tracked = [x for x in rows if x.get("logger")]
        if tracked:
            t = tracked[0]
            lines.append(
                f"Tracker {t['logger']}: {t['logger_rows_per_send']} history rows handed over per checkpoint "
                f"(log_every={t['log_every']}, checkpoint_every={t['checkpoint_every']}), median of {t['logger_sends']} "
                f"hand-overs; opening its run {t['logger_open_s']:.1f} s once. Per iteration: "
                + ", ".join(f"{x['method']} {x['logger_ms_per_iter']:.3f} ms ({x['logger_percent_of_step']:.2f} % of "
                            f"its step)" for x in tracked) + ".")
    return "\n".join(lines)


def bench(overrides: Sequence[str], say: Callable[[str], None] = print) -> list[dict]:
    """``pinnbench bench [overrides]``: run, write ``bench.out`` (JSON records), print the table."""
    options, configs = compose(overrides)
    records = [record for problem_configs in configs.values() for record in run_bench(options, problem_configs, say)]
    _add_ratios(records)
    out = Path(options.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(records, indent=2) + "\n")
    os.replace(tmp, out)
    say("")
    say(table(records))
    say("")
    say(summary(records))
    say(f"records in {out}")
    return records
