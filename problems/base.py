"""The Problem contract: collocation points, loss terms, groupings and the exact reference.

A problem names its loss terms (``residual``, ``boundary``, ``initial``, …) and how they are grouped
into the losses a method sees (``groupings[n_losses]``). A problem computes only the terms it is
asked for.

How a term's pointwise squared residuals [N, columns] become one number is the option
``reduction`` (Liu, Chu, Thuerey 2025, code ``experiments/PINN/lib_pinns/<problem>/trainer.py``):

* ``paper`` (default), as the paper's code: a PDE residual is the sum over its equations of the
  mean over points; a data term (boundary, initial values) is the mean over all N × columns
  entries; a group of several terms is one mean over the entries of all its terms' points
  concatenated (``group_reduction = "concat"``; Burgers, Beltrami) or the sum of its terms' losses
  (``"sum"``; Schrödinger). A problem may set a term's reduction in ``term_reductions``.
* ``per_column``: every term is the mean over points summed over columns, and a group is the sum of
  its terms' losses (every field weighs as much as one equation).

Two options change the losses of every method alike (methods see only losses):

* ``causal`` (time-dependent problems): the residual points are weighted by time chunk so that later
  times are trained only once earlier ones are resolved (Wang, Sankaran, Perdikaris 2024); see
  :func:`causal_residual`.
* ``inverse`` (problems that name an ``unknown`` parameter): the PDE's parameter is trained with the
  network from observations of the reference solution, a fourth term ``data``; see
  :class:`InverseOptions`.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import Any, Callable, ClassVar, Dict

import numpy as np
import torch
from torch import Tensor

from pinnbench.errors import ConfigError

REFERENCE_DIR_ENV = "PINNBENCH_REFERENCE_DIR"
"""Environment variable naming a folder that holds the ConFIG paper's data files."""

Field = Callable[[Tensor], Tensor]
"""A function from inputs [N, input_dim] to outputs [N, output_dim]: a network or an exact solution."""


@dataclass
class Size:
    """Network and points per iteration for one problem size (``cpu`` default, ``paper``)."""

    width: int = 50
    hidden_layers: int = 5
    points: Dict[str, int] = field(default_factory=dict)
    iterations: int = 1000


REDUCTIONS = ("paper", "per_column")
TEST_REFERENCES = ("paper", "exact")


def check_choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    """Raise a :class:`~pinnbench.errors.ConfigError` naming ``problem.<key>`` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ConfigError(f"problem.{key}={value!r} is not a choice; allowed: {', '.join(allowed)}.")


@dataclass
class CausalOptions:
    """Causal weighting of the residual loss (:func:`causal_residual`): ``chunks`` time chunks M
    (0: off, the default; jaxpi's examples use 16 or 32) and the tolerance ``epsilon`` ε (jaxpi: 1.0)."""

    chunks: int = 0
    epsilon: float = 1.0

    def __post_init__(self) -> None:
        if self.chunks < 0:
            raise ConfigError(f"problem.causal.chunks={self.chunks} must be 0 (off) or a positive number of chunks.")
        if not self.epsilon >= 0:
            raise ConfigError(f"problem.causal.epsilon={self.epsilon} must be 0 or positive.")


@dataclass
class InverseOptions:
    """An inverse problem: the PDE's parameter (the problem's :attr:`Problem.unknown`) is unknown.

    With ``enabled`` it is trained with the network, as θ = log(parameter) (so it stays positive and
    Adam's steps are relative changes), from ``initial``; its learning rate follows the run's
    warm-up and cosine schedule scaled to peak at ``lr``. A term ``data`` fits ``points``
    observations of the reference solution at Latin-hypercube points of the whole domain, with
    Gaussian noise of standard deviation ``noise`` × each field's standard deviation over the
    observations; they are drawn once per seed and stay fixed.
    """

    enabled: bool = False
    initial: float = 1.0
    lr: float = 1e-2
    points: int = 500
    noise: float = 0.0

    def __post_init__(self) -> None:
        for key in ("initial", "lr"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"problem.inverse.{key}={getattr(self, key)} must be positive.")
        if self.points < 1:
            raise ConfigError(f"problem.inverse.points={self.points} must be a positive number of observations.")
        if not self.noise >= 0:
            raise ConfigError(f"problem.inverse.noise={self.noise} must be 0 or positive.")


@dataclass
class ProblemOptions:
    """Options every problem has; a problem adds its physical parameters in a subclass.

    ``reduction``: ``paper`` | ``per_column`` (module docstring). ``test_reference``: what
    ``test_mse`` is scored against, ``paper`` (the paper's data file where it has one, else the
    exact solution, as the paper does) or ``exact`` (our exact reference); both are recorded.
    ``causal``: :class:`CausalOptions` (time-dependent problems only).
    """

    name: str = "problem"
    size: str = "cpu"
    sizes: Dict[str, Size] = field(default_factory=dict)
    reduction: str = "paper"
    test_reference: str = "paper"
    causal: CausalOptions = field(default_factory=CausalOptions)

    def __post_init__(self) -> None:
        check_choice("reduction", self.reduction, REDUCTIONS)
        check_choice("test_reference", self.test_reference, TEST_REFERENCES)


@dataclass
class Batch:
    """Collocation points of one term and, for data terms, the target values there."""

    inputs: Tensor
    targets: Tensor | None = None


class LazyBatches(dict):
    """A problem's collocation points for one iteration, each term drawn when first asked for: a
    term that no loss evaluates this iteration (M-ConFIG refreshes one loss) costs nothing.

    Each term's points are a function of (seed, iteration, term) alone — ``generator`` is re-seeded
    from them — so they do not depend on which other terms were drawn, or in which order: every
    method sees the same points at a given iteration, and evaluating extra losses (diagnostics)
    changes nothing that follows. The problem's :attr:`~Problem.fixed_terms` (an inverse run's
    observations) depend on (seed, term) alone: drawn once, kept by the problem."""

    def __init__(self, problem: "Problem", generator: torch.Generator, seed: int, iteration: int) -> None:
        super().__init__()
        self.problem, self.generator, self.key = problem, generator, (seed, iteration)

    def __missing__(self, term: str) -> Batch:
        seed, iteration = self.key
        fixed = term in self.problem.fixed_terms  # drawn once per seed: the same points at every iteration
        if fixed and (seed, term) in self.problem.fixed_batches:
            batch = self[term] = self.problem.fixed_batches[seed, term]
            return batch
        entropy = [seed, self.problem.terms.index(term)] if fixed else [seed, iteration, self.problem.terms.index(term)]
        self.generator.manual_seed(int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> 1))
        batch = self[term] = self.problem.sample(self.generator, (term,))[term]
        if fixed:
            self.problem.fixed_batches[seed, term] = batch
        return batch


def latin_hypercube(n: int, lower: Tensor, upper: Tensor, generator: torch.Generator) -> Tensor:
    """n points in the box [lower, upper] by Latin-hypercube sampling: in every coordinate each of
    the n equal strata holds exactly one point, at a uniform position inside it."""
    dim = lower.numel()
    strata = torch.stack(
        [torch.randperm(n, generator=generator, device=lower.device) for _ in range(dim)], dim=1
    ).to(lower.dtype)
    jitter = torch.rand(n, dim, generator=generator, device=lower.device, dtype=lower.dtype)
    return lower + (strata + jitter) / n * (upper - lower)


def even_split(n: int, parts: int) -> list[int]:
    """n points shared by ``parts`` parts as evenly as can be (the first n mod parts get one more)."""
    return [n // parts + (k < n % parts) for k in range(parts)]


def face_points(n: int, lower: Tensor, upper: Tensor, faces: tuple[tuple[int, int], ...],
                generator: torch.Generator) -> Tensor:
    """n points on the given faces of the box [lower, upper], shared by :func:`even_split` and in
    the order of ``faces``: face (axis, side) is where input ``axis`` sits at its lower (side 0) or
    upper (side 1) end; the free inputs are Latin-hypercube points of the face."""
    blocks = []
    for (axis, side), count in zip(faces, even_split(n, len(faces))):
        points = latin_hypercube(count, lower, upper, generator)
        points[:, axis] = (upper if side else lower)[axis]
        blocks.append(points)
    return torch.cat(blocks)


def sum_of_part_means(squares: Tensor, parts: int) -> Tensor:
    """Σ over the :func:`even_split` parts of ``squares`` [N, c] (consecutive blocks) of each part's
    mean over all its entries: a loss written as one mean per boundary face, summed."""
    return sum(block.mean() for block in squares.split(even_split(squares.shape[0], parts)))


def chunk_ids(t: Tensor, chunks: int) -> Tensor:
    """The time chunk of every point: sorted by t, the N points are cut into M runs of consecutive
    times, the point of rank ρ (0 = earliest) in chunk ⌊ρ M / N⌋, so chunk sizes differ by at most
    one (jaxpi sorts and reshapes, which needs M to divide N). With Latin-hypercube points and M
    dividing N, chunk k holds exactly the points with t in the k-th of M equal time intervals."""
    n = t.numel()
    ranks = torch.empty(n, dtype=torch.long, device=t.device)
    ranks[torch.argsort(t.reshape(-1), stable=True)] = torch.arange(n, device=t.device)
    return torch.div(ranks * chunks, n, rounding_mode="floor")


def chunk_losses(squares: Tensor, ids: Tensor, chunks: int) -> Tensor:
    """L[k, c]: the mean of ``squares`` [N, c] over the points of chunk k (``ids`` [N])."""
    counts = torch.bincount(ids, minlength=chunks).to(squares.dtype)
    return squares.new_zeros(chunks, squares.shape[1]).index_add_(0, ids, squares) / counts[:, None]


def causal_weights(losses: Tensor, epsilon: float) -> Tensor:
    """w_k = exp(−ε Σ_{j<k} L_j) for chunk losses L [M] or [M, c], detached (Wang, Sankaran,
    Perdikaris, CMAME 2024, arXiv 2203.07404; jaxpi's ``res_and_w``). With several equations
    (columns) each has its own weights and every chunk takes the smallest, as jaxpi's Navier–Stokes
    examples do."""
    losses = losses.detach().reshape(losses.shape[0], -1)
    earlier = torch.cat([torch.zeros_like(losses[:1]), torch.cumsum(losses, dim=0)[:-1]])
    return torch.exp(-epsilon * earlier).amin(dim=1)


def causal_residual(residual: Tensor, t: Tensor, chunks: int, epsilon: float) -> tuple[Tensor, Tensor]:
    """(√w_{k(i)} r_i for every point i, the weights w [M]): the residuals [N, c] scaled so that
    their mean square is the causal loss

        Σ_k (N_k / N) w_k L_k,   L_k = mean over chunk k of Σ_c r²,   w_k = :func:`causal_weights`,

    jaxpi's (1/M) Σ_k w_k L_k when the M chunks (:func:`chunk_ids`) are equally large, and the
    plain residual loss when every w_k = 1. The weights carry no gradient; methods that look at
    pointwise residuals (NTK weighting) see the weighted ones, as jaxpi weights its residual NTK."""
    ids = chunk_ids(t, chunks)
    weights = causal_weights(chunk_losses(residual.detach().square(), ids, chunks), epsilon)
    return residual * weights.sqrt()[ids, None], weights


def gradient(y: Tensor, x: Tensor) -> Tensor:
    """∂y/∂x for every point: rows of the Jacobian of a pointwise scalar field y[N] w.r.t. x[N, d]."""
    return torch.autograd.grad(y, x, torch.ones_like(y), create_graph=True)[0]


def cache_dir() -> Path:
    """Where generated references are cached: $PINNBENCH_CACHE, else ~/.cache/pinnbench."""
    return Path(os.environ.get("PINNBENCH_CACHE", Path.home() / ".cache" / "pinnbench"))


PAPER_DATA_DIRS = [Path(__file__).resolve().parent / "data",
                   Path(__file__).resolve().parent.parent.parent / "shared" / "reference"]
"""Where the paper's data files are looked for after $PINNBENCH_REFERENCE_DIR."""


def paper_data(filename: str) -> Path | None:
    """The paper's data file ``filename`` (e.g. ``schrodinger_NLS.mat``), or None when absent.

    Looked for in $PINNBENCH_REFERENCE_DIR, then in :data:`PAPER_DATA_DIRS` (``problems/data/``,
    ``<repository>/../shared/reference``).
    """
    folders = [Path(os.environ[REFERENCE_DIR_ENV])] if os.environ.get(REFERENCE_DIR_ENV) else []
    for folder in folders + PAPER_DATA_DIRS:
        if (folder / filename).is_file():
            return folder / filename
    return None


def field_errors(prediction: Tensor, truth: Tensor, names: tuple[str, ...]) -> dict[str, float]:
    """``mse_<name>`` and ``rel_l2_<name>`` = ‖pred − ref‖₂ / ‖ref‖₂ for every column."""
    difference = prediction - truth
    mse = difference.square().mean(dim=0).tolist()
    rel = (difference.norm(dim=0) / truth.norm(dim=0)).tolist()
    errors = {f"mse_{name}": value for name, value in zip(names, mse)}
    errors.update({f"rel_l2_{name}": value for name, value in zip(names, rel)})
    return errors


@dataclass
class FieldSlice:
    """A regular 2-D grid of input points on which fields are drawn, with the reference there.

    ``inputs`` [rows·cols, input_dim] run row-major over (vertical, horizontal); ``axes`` names the
    inputs along (horizontal, vertical); ``fields`` [rows·cols, n_fields] is the reference.
    """

    inputs: np.ndarray
    fields: np.ndarray
    shape: tuple[int, int]
    axes: tuple[int, int]
    title: str = ""
    reference: str = "the exact reference"
    """What ``fields`` are, in words (the error panels name it)."""


class Problem:
    """Base class; subclasses set the class attributes and implement the abstract methods."""

    Options: ClassVar[type] = ProblemOptions
    input_names: ClassVar[tuple[str, ...]]
    field_names: ClassVar[tuple[str, ...]]
    terms: ClassVar[tuple[str, ...]]
    groupings: ClassVar[dict[int, tuple[tuple[str, ...], ...]]]
    lower: ClassVar[tuple[float, ...]]
    upper: ClassVar[tuple[float, ...]]
    reference_version: ClassVar[str] = "1"
    group_reduction: ClassVar[str] = "concat"
    """How the paper's code forms a loss of several terms: ``concat`` (one mean over all their
    entries) or ``sum`` (the sum of the terms' losses)."""
    term_reductions: ClassVar[dict[str, str]] = {}
    """The paper's reduction of a term where it is not the default (``columns`` for the residual,
    ``entries`` for data terms)."""
    paper_file: ClassVar[str | None] = None
    """The paper's data file of the reference solution (looked up by :func:`paper_data`), if any."""
    fast: bool | str = True
    """How :func:`~problems.derivatives.jet` takes derivatives: True (Taylor streams through the
    network), False (nested autograd) or ``"compiled"`` (Taylor with compiled kernels)."""
    unknown: ClassVar[str | None] = None
    """The option holding the PDE parameter an inverse run trains (``nu``, ``re``); its value in the
    options is the truth the observations come from. None: the problem has no inverse version."""
    inverse_groupings: ClassVar[dict[int, tuple[tuple[str, ...], ...]]] = {}
    """``groupings`` of an inverse run, in which the term ``data`` joins the losses."""
    fixed_terms: ClassVar[tuple[str, ...]] = ("data",)
    """Terms whose points are drawn once per seed rather than every iteration (observations)."""

    def __init__(self, options: ProblemOptions, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
        if options.size not in options.sizes:
            raise ConfigError(
                f"problem.size={options.size!r} is not a size of problem {options.name!r}; "
                f"allowed: {', '.join(options.sizes)}."
            )
        self.options = options
        self.size: Size = options.sizes[options.size]
        missing = [t for t in self.terms if t not in self.size.points]
        if missing:
            raise ConfigError(
                f"problem.sizes.{options.size}.points lacks {', '.join(missing)}; "
                f"every term needs a point count: {', '.join(self.terms)}."
            )
        self.device = torch.device(device)
        self.dtype = dtype
        self.box_lower = torch.tensor(self.lower, device=self.device, dtype=dtype)
        self.box_upper = torch.tensor(self.upper, device=self.device, dtype=dtype)
        self.points = dict(self.size.points)
        self.fixed_batches: dict[tuple[int, str], Batch] = {}
        self.causal_weights: Tensor | None = None
        """The causal weights w [M] of the latest residual evaluated (None before the first)."""
        causal = options.causal
        if causal.chunks and "t" not in self.input_names:
            raise ConfigError(f"problem.causal.chunks={causal.chunks}: causal training orders the residual points by "
                              f"time, and problem {self.name!r} is steady (inputs {', '.join(self.input_names)}); "
                              f"use problem.causal.chunks=0.")
        if causal.chunks > self.points["residual"]:
            raise ConfigError(f"problem.causal.chunks={causal.chunks} exceeds the {self.points['residual']} residual "
                              f"points per iteration; every chunk needs a point.")
        self.log_unknown: Tensor | None = None
        """θ [1] = log of the unknown parameter in an inverse run, trained with the network; else None."""
        inverse = getattr(options, "inverse", None)
        if inverse is not None and inverse.enabled:
            self.terms = (*self.terms, "data")
            self.groupings = self.inverse_groupings
            self.points["data"] = inverse.points
            self.log_unknown = torch.tensor([math.log(inverse.initial)], device=self.device, dtype=dtype,
                                            requires_grad=True)  # [1], not 0-d: some optimisers want a dimension

    # ----- grouping -------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.options.name

    @property
    def input_dim(self) -> int:
        return len(self.input_names)

    @property
    def output_dim(self) -> int:
        return len(self.field_names)

    def groups(self, n_losses: int) -> tuple[tuple[str, ...], ...]:
        """The terms in each of the ``n_losses`` losses."""
        if n_losses not in self.groupings:
            raise ConfigError(
                f"n_losses={n_losses} is not offered by problem {self.name!r}; "
                f"allowed: {', '.join(map(str, sorted(self.groupings)))}."
            )
        return self.groupings[n_losses]

    @staticmethod
    def group_name(group: tuple[str, ...]) -> str:
        return "+".join(group)

    # ----- points and losses ----------------------------------------------------------------
    def sample(self, generator: torch.Generator, terms: tuple[str, ...] | None = None) -> dict[str, Batch]:
        """Fresh collocation points for each requested term (all terms by default)."""
        return {term: self.observations(self.points[term], generator) if term == "data"
                else self.sample_term(term, self.points[term], generator) for term in terms or self.terms}

    def sample_term(self, term: str, n: int, generator: torch.Generator) -> Batch:
        raise NotImplementedError

    def observations(self, n: int, generator: torch.Generator) -> Batch:
        """An inverse run's data: the exact solution at n Latin-hypercube points of the whole domain
        plus Gaussian noise of standard deviation ``inverse.noise`` × each field's standard deviation
        over these points (the noise is drawn at every level, so the points do not depend on it)."""
        inputs = latin_hypercube(n, self.box_lower, self.box_upper, generator)
        with torch.no_grad():
            clean = self.exact(inputs)
        noise = torch.randn(clean.shape, generator=generator, device=self.device, dtype=self.dtype)
        return Batch(inputs, clean + self.options.inverse.noise * clean.std(dim=0, correction=0) * noise)

    # ----- inverse problems ----------------------------------------------------------------
    def coefficient(self) -> float | Tensor:
        """The value of :attr:`unknown` the PDE residual uses: exp(θ), a tensor that carries θ's
        gradient, in an inverse run; the option's value (a float) otherwise."""
        return self.log_unknown.exp() if self.log_unknown is not None else getattr(self.options, self.unknown)

    def param_groups(self) -> list[dict]:
        """The problem's trainable parameters (θ of an inverse run; none otherwise) as optimiser
        parameter groups with their peak learning rate ``lr``."""
        if self.log_unknown is None:
            return []
        return [{"params": [self.log_unknown], "lr": self.options.inverse.lr}]

    def parameter_errors(self) -> dict[str, float]:
        """In an inverse run, the estimate of the unknown (``<unknown>``, e.g. ``nu``) and its
        relative error ``|estimate − truth| / |truth|`` (``<unknown>_rel_error``); else nothing."""
        if self.log_unknown is None:
            return {}
        estimate, truth = self.log_unknown.exp().item(), getattr(self.options, self.unknown)
        return {self.unknown: estimate, f"{self.unknown}_rel_error": abs(estimate - truth) / abs(truth)}

    def record(self) -> dict[str, Tensor]:
        """Per-iteration quantities for the history, as 0-d tensors: ``causal_weight_min``, the
        smallest causal weight (w_M, the last chunk's: it nears 1 once every time is resolved), and
        an inverse run's estimate ``<unknown>``."""
        recorded = {}
        if self.options.causal.chunks:
            recorded["causal_weight_min"] = (self.causal_weights.min() if self.causal_weights is not None
                                             else torch.tensor(float("nan")))
        if self.log_unknown is not None:
            recorded[self.unknown] = self.log_unknown.detach().exp()[0]
        return recorded

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs to continue exactly: θ and the latest causal weights."""
        return {"log_unknown": None if self.log_unknown is None else self.log_unknown.detach().clone(),
                "causal_weights": self.causal_weights}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.log_unknown is not None and state.get("log_unknown") is not None:
            with torch.no_grad():
                self.log_unknown.copy_(state["log_unknown"])
        weights = state.get("causal_weights")
        self.causal_weights = None if weights is None else weights.to(self.device, self.dtype)

    def target(self, term: str, inputs: Tensor) -> Tensor | None:
        """The data a term's points must match (None for a residual term): by default the exact
        solution there."""
        return None if term == "residual" else self.exact(inputs)

    def term_residual(self, fn: Field, batch: Batch, term: str) -> Tensor:
        """Pointwise residuals [N, n_eq] of one term for the field ``fn`` (zero for the exact solution);
        with ``causal`` on, the PDE residual is weighted by time chunk (:func:`causal_residual`)."""
        if term == "residual":
            residual = self.pde_residual(fn, batch.inputs)
            causal = self.options.causal
            if not causal.chunks:
                return residual
            t = batch.inputs[:, self.input_names.index("t")]
            weighted, self.causal_weights = causal_residual(residual, t, causal.chunks, causal.epsilon)
            return weighted
        return fn(batch.inputs) - batch.targets

    def pde_residual(self, fn: Field, inputs: Tensor) -> Tensor:
        raise NotImplementedError

    def term_reduction(self, term: str) -> str:
        """``columns`` (mean over points, summed over columns) or ``entries`` (mean over all entries)."""
        if self.options.reduction == "per_column":
            return "columns"
        return self.term_reductions.get(term, "columns" if term == "residual" else "entries")

    def term_loss(self, fn: Field, batch: Batch, term: str) -> Tensor:
        """The squared residual [N, columns] reduced as :meth:`term_reduction` says."""
        squares = self.term_residual(fn, batch, term).square()
        return squares.mean() if self.term_reduction(term) == "entries" else squares.mean(dim=0).sum()

    def group_loss(self, fn: Field, batches: dict[str, Batch], group: tuple[str, ...]) -> Tensor:
        """The loss of one group: its term's loss, the sum of its terms' losses, or (the paper's
        ``concat``) Σ_terms Σ entries r² / Σ_terms entries, one mean over the concatenated points."""
        if len(group) == 1 or self.options.reduction == "per_column" or self.group_reduction == "sum":
            return sum(self.term_loss(fn, batches[t], t) for t in group)
        squares = [self.term_residual(fn, batches[t], t).square() for t in group]
        return sum(s.sum() for s in squares) / sum(s.numel() for s in squares)

    def group_losses(self, fn: Field, batches: dict[str, Batch], groups: tuple[tuple[str, ...], ...]) -> Tensor:
        """The losses of the given groups, stacked."""
        return torch.stack([self.group_loss(fn, batches, group) for group in groups])

    # ----- reference and test error --------------------------------------------------------
    def exact(self, inputs: Tensor) -> Tensor:
        """The exact solution at ``inputs`` (differentiable, any dtype), where a closed form exists."""
        raise NotImplementedError

    def compute_reference(self) -> tuple[np.ndarray, np.ndarray]:
        """(inputs [N, input_dim], fields [N, n_fields]) on the paper's test grid, float64."""
        raise NotImplementedError

    def reference(self) -> tuple[np.ndarray, np.ndarray]:
        """The reference on the test grid, computed once and cached on disk."""
        key = hashlib.sha1(f"{type(self).__module__}.{type(self).__name__}:{self.reference_version}:"
                           f"{self.reference_key()}".encode()).hexdigest()[:12]
        path = cache_dir() / f"{self.name}-{key}.npz"
        if path.exists():
            with np.load(path) as data:
                return data["inputs"], data["fields"]
        inputs, fields = self.compute_reference()
        from pinnbench.records import atomic_path

        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, inputs=inputs, fields=fields)
        return inputs, fields

    def reference_key(self) -> str:
        """Physical parameters that change the reference (part of the cache key)."""
        return ""

    def read_paper_file(self, path: Path) -> np.ndarray:
        """The fields [N, n_fields] in the paper's file ``path``, on :meth:`reference`'s inputs."""
        raise NotImplementedError

    def paper_fields(self, shape: tuple[int, ...]) -> tuple[np.ndarray | None, str]:
        """(the paper's reference fields on the test grid, or None; why not, when None)."""
        if self.paper_file is None:
            return None, f"the paper scores {self.name} against its exact solution"
        path = paper_data(self.paper_file)
        if path is None:
            return None, (f"the paper's file {self.paper_file} is in none of ${REFERENCE_DIR_ENV}, "
                          f"{', '.join(map(str, PAPER_DATA_DIRS))}")
        values = self.read_paper_file(path)
        if values.shape != shape:
            return None, f"the paper's file {path} holds {values.shape[0]} points, the test grid {shape[0]}"
        return values, ""

    @cached_property
    def _test_tensors(self) -> tuple[Tensor, dict[str, Tensor]]:
        """The test inputs and the reference fields there: ``exact``, and ``paper`` where the file is."""
        inputs, fields = self.reference()
        truths = {"exact": fields}
        paper, self._no_paper_reason = self.paper_fields(fields.shape)
        if paper is not None:
            truths["paper"] = paper
        as_tensor = partial(torch.as_tensor, device=self.device, dtype=self.dtype)
        return as_tensor(inputs), {name: as_tensor(values) for name, values in truths.items()}

    @cached_property
    def scored_reference(self) -> str:
        """What ``test_mse`` is scored against: ``paper`` (the paper's data file) or ``exact``.
        Problems without a file are scored against the exact solution, as in the paper; when the
        file is wanted but missing (or does not fit the test grid) the run says so once and uses
        the exact reference."""
        if self.options.test_reference == "exact" or self.paper_file is None:
            return "exact"
        if "paper" not in self._test_tensors[1]:
            print(f"warning: problem {self.name}: test_reference=paper, but {self._no_paper_reason}; test_mse is "
                  f"scored against the exact reference instead (summary.json: test_reference=exact).",
                  file=sys.stderr, flush=True)
            return "exact"
        return "paper"

    @torch.no_grad()
    def predict(self, fn: Field) -> Tensor:
        """The prediction on the test grid, [N, n_fields]."""
        inputs, _ = self._test_tensors
        return fn(inputs)

    def errors_against(self, prediction: Tensor, truth: Tensor) -> dict[str, float]:
        """``test_mse``, ``rel_l2`` and per field (and derived field) ``mse_<f>``, ``rel_l2_<f>``."""
        derived_truth, derived = self.derived_fields(truth), self.derived_fields(prediction)
        names = self.field_names + tuple(derived)
        columns = [prediction] + [derived[n][:, None] for n in derived]
        truths = [truth] + [derived_truth[n][:, None] for n in derived]
        errors = field_errors(torch.cat(columns, dim=1), torch.cat(truths, dim=1), names)
        errors["rel_l2"] = ((prediction - truth).norm() / truth.norm()).item()  # the fields stacked
        errors["test_mse"] = self.test_mse(errors)
        return errors

    @torch.no_grad()
    def error(self, fn: Field) -> dict[str, float]:
        """Against the reference :attr:`scored_reference` names: ``test_mse`` (the paper's metric),
        ``rel_l2`` and per-field ``mse_<f>``, ``rel_l2_<f>``; against each reference there is:
        ``test_mse_<ref>`` and ``rel_l2_<ref>`` (``exact``, and ``paper`` where its file is); in an
        inverse run also :meth:`parameter_errors`."""
        _, truths = self._test_tensors
        prediction = self.predict(fn)
        errors: dict[str, float] = {}
        for name, truth in truths.items():
            these = self.errors_against(prediction, truth)
            errors.update({f"test_mse_{name}": these["test_mse"], f"rel_l2_{name}": these["rel_l2"]})
            if name == self.scored_reference:
                errors.update(these)
        errors.update(self.parameter_errors())
        return errors

    # ----- validation set and label-free objective (for tuning) -----------------------------
    validation_points: ClassVar[int] = 2000
    VALIDATION_SEED: ClassVar[int] = 20_240_817
    LABEL_FREE_SEED: ClassVar[int] = 2_147_483_629
    """Fixed seeds of the validation points and of the label-free objective's fresh points."""

    def validation_set(self) -> tuple[np.ndarray, np.ndarray]:
        """(inputs [n, d], fields [n, f]), float64: ``validation_points`` points drawn uniformly
        in the domain with a fixed seed, none on the test grid, and the reference there (the exact
        solution, or where a problem has none a cubic interpolation of its reference grid). Cached
        on disk beside the reference; selection on these never reads the test grid's errors."""
        key = hashlib.sha1(f"{type(self).__module__}.{type(self).__name__}:{self.reference_version}:"
                           f"{self.reference_key()}:validation:{self.validation_points}:{self.VALIDATION_SEED}"
                           .encode()).hexdigest()[:12]
        path = cache_dir() / f"{self.name}-validation-{key}.npz"
        if path.exists():
            with np.load(path) as data:
                return data["inputs"], data["fields"]
        from scipy.spatial import cKDTree

        test_inputs, test_fields = self.reference()
        rng = np.random.default_rng(self.VALIDATION_SEED)
        lower, upper = np.array(self.lower), np.array(self.upper)
        drawn = lower + rng.random((self.validation_points * 2, len(lower))) * (upper - lower)
        distance, _ = cKDTree(test_inputs).query(drawn)
        inputs = drawn[distance > 1e-9][:self.validation_points]
        fields = self.validation_reference(inputs, test_inputs, test_fields)
        from pinnbench.records import atomic_path

        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, inputs=inputs, fields=fields)
        return inputs, fields

    def validation_reference(self, inputs: np.ndarray, grid: np.ndarray, fields: np.ndarray) -> np.ndarray:
        """The reference [n, f] at validation ``inputs``: the exact solution, else a cubic
        interpolation of the reference ``fields`` on its regular test ``grid``."""
        try:
            with torch.no_grad():
                return torch.cat([self.exact(chunk) for chunk in torch.from_numpy(inputs).split(2048)]).numpy()
        except NotImplementedError:
            from scipy.interpolate import RegularGridInterpolator

            axes = [np.unique(grid[:, j]) for j in range(grid.shape[1])]
            order = np.lexsort(grid.T[::-1])  # row-major over the axes in input order
            values = fields[order].reshape(*(len(a) for a in axes), fields.shape[1])
            # points of the domain beyond the grid's last row or column (a periodic edge) are extrapolated
            return RegularGridInterpolator(axes, values, method="cubic", bounds_error=False, fill_value=None)(inputs)

    @torch.no_grad()
    def validation_errors(self, fn: Field) -> dict[str, float]:
        """``val_rel_l2`` (the fields stacked) and ``val_mse`` (as ``test_mse``) on the validation set."""
        inputs, fields = self.validation_set()
        as_tensor = partial(torch.as_tensor, device=self.device, dtype=self.dtype)
        errors = self.errors_against(fn(as_tensor(inputs)), as_tensor(fields))
        return {"val_rel_l2": errors["rel_l2"], "val_mse": errors["test_mse"]}

    def label_free(self, fn: Field, groups: tuple[tuple[str, ...], ...]) -> float:
        """The unweighted sum of the training losses of ``groups`` on fresh points (one batch of
        the run's size, drawn with a fixed seed unused by training): an objective without a reference."""
        saved = self.causal_weights
        with torch.enable_grad():
            batches = self.sample(torch.Generator(self.device).manual_seed(self.LABEL_FREE_SEED))
            value = self.group_losses(fn, batches, groups).sum().item()
        self.causal_weights = saved
        return value

    def derived_fields(self, values: Tensor) -> dict[str, Tensor]:
        """Quantities computed from the fields [N, n_fields] that are also reported ([N] each),
        e.g. the modulus ``|h|`` of a complex field; none by default."""
        return {}

    def plot_slice(self) -> FieldSlice:
        """Where fields are drawn: by default the test grid itself, when it is a regular 2-D grid
        (time along the horizontal axis if there is a ``t`` input, else the first input)."""
        inputs, fields = self.reference()
        if self.input_dim != 2:
            raise NotImplementedError(f"problem {self.name!r} has {self.input_dim} inputs: override plot_slice")
        horizontal = self.input_names.index("t") if "t" in self.input_names else 0
        vertical = 1 - horizontal
        order = np.lexsort((inputs[:, horizontal], inputs[:, vertical]))
        shape = (len(np.unique(inputs[:, vertical])), len(np.unique(inputs[:, horizontal])))
        if shape[0] * shape[1] != len(inputs):
            raise NotImplementedError(f"the test grid of {self.name!r} is not regular: override plot_slice")
        return FieldSlice(inputs[order], fields[order], shape, (horizontal, vertical))

    def test_mse(self, per_field: dict[str, float]) -> float:
        """The paper's test metric from the per-field MSEs: their mean, unless a problem says otherwise."""
        return float(np.mean([per_field[f"mse_{name}"] for name in self.field_names]))
