"""The Problem contract: collocation points, loss terms, groupings and the exact reference.

A problem names its loss terms (``residual``, ``boundary``, ``initial``, …) and how they are grouped
into the losses a method sees (``groupings[n_losses]``); a group's loss is the sum of its terms'
losses. Each term's loss is the mean over its points of the squared residual, summed over the
equations or fields it constrains. A problem computes only the terms it is asked for.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable, ClassVar, Dict

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


@dataclass
class ProblemOptions:
    """Options every problem has; a problem adds its physical parameters in a subclass."""

    name: str = "problem"
    size: str = "cpu"
    sizes: Dict[str, Size] = field(default_factory=dict)


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
    changes nothing that follows."""

    def __init__(self, problem: "Problem", generator: torch.Generator, seed: int, iteration: int) -> None:
        super().__init__()
        self.problem, self.generator, self.key = problem, generator, (seed, iteration)

    def __missing__(self, term: str) -> Batch:
        entropy = [*self.key, self.problem.terms.index(term)]
        self.generator.manual_seed(int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> 1))
        batch = self[term] = self.problem.sample(self.generator, (term,))[term]
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


def gradient(y: Tensor, x: Tensor) -> Tensor:
    """∂y/∂x for every point: rows of the Jacobian of a pointwise scalar field y[N] w.r.t. x[N, d]."""
    return torch.autograd.grad(y, x, torch.ones_like(y), create_graph=True)[0]


def cache_dir() -> Path:
    """Where generated references are cached: $PINNBENCH_CACHE, else ~/.cache/pinnbench."""
    return Path(os.environ.get("PINNBENCH_CACHE", Path.home() / ".cache" / "pinnbench"))


def paper_data(filename: str) -> Path | None:
    """The paper's data file ``filename`` (e.g. ``schrodinger_NLS.mat``), or None when absent.

    Looked for in $PINNBENCH_REFERENCE_DIR, then in ``<repository>/../shared/reference``.
    """
    folders = [Path(os.environ[REFERENCE_DIR_ENV])] if os.environ.get(REFERENCE_DIR_ENV) else []
    folders.append(Path(__file__).resolve().parent.parent.parent / "shared" / "reference")
    for folder in folders:
        if (folder / filename).is_file():
            return folder / filename
    return None


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
    fast: bool | str = True
    """How :func:`~problems.derivatives.jet` takes derivatives: True (Taylor streams through the
    network), False (nested autograd) or ``"compiled"`` (Taylor with compiled kernels)."""

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
        return {term: self.sample_term(term, self.size.points[term], generator) for term in terms or self.terms}

    def sample_term(self, term: str, n: int, generator: torch.Generator) -> Batch:
        raise NotImplementedError

    def term_residual(self, fn: Field, batch: Batch, term: str) -> Tensor:
        """Pointwise residuals [N, n_eq] of one term for the field ``fn`` (zero for the exact solution)."""
        if term == "residual":
            return self.pde_residual(fn, batch.inputs)
        return fn(batch.inputs) - batch.targets

    def pde_residual(self, fn: Field, inputs: Tensor) -> Tensor:
        raise NotImplementedError

    def term_loss(self, fn: Field, batch: Batch, term: str) -> Tensor:
        """Mean over points of the squared residual, summed over equations."""
        return self.term_residual(fn, batch, term).square().mean(dim=0).sum()

    def group_loss(self, fn: Field, batches: dict[str, Batch], group: tuple[str, ...]) -> Tensor:
        """The loss of one group: the sum of its terms' losses."""
        return sum(self.term_loss(fn, batches[t], t) for t in group)

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

    @cached_property
    def _test_tensors(self) -> tuple[Tensor, Tensor]:
        inputs, fields = self.reference()
        return (torch.as_tensor(inputs, device=self.device, dtype=self.dtype),
                torch.as_tensor(fields, device=self.device, dtype=self.dtype))

    @torch.no_grad()
    def predict(self, fn: Field) -> Tensor:
        """The prediction on the test grid, [N, n_fields]."""
        inputs, _ = self._test_tensors
        return fn(inputs)

    @torch.no_grad()
    def error(self, fn: Field) -> dict[str, float]:
        """``test_mse`` (the paper's metric) and ``mse_<field>`` for every field and derived field."""
        _, fields = self._test_tensors
        prediction = self.predict(fn)
        per_field = (prediction - fields).square().mean(dim=0).tolist()
        errors = {f"mse_{name}": value for name, value in zip(self.field_names, per_field)}
        truth = self.derived_fields(fields)
        for name, value in self.derived_fields(prediction).items():
            errors[f"mse_{name}"] = (value - truth[name]).square().mean().item()
        errors["test_mse"] = self.test_mse(errors)
        return errors

    def derived_fields(self, values: Tensor) -> dict[str, Tensor]:
        """Quantities computed from the fields [N, n_fields] that are also reported ([N] each),
        e.g. the modulus |h| of a complex field; none by default."""
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
