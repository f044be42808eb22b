"""Prediction, reference and absolute error of every field of a trained run, as one figure.

Each problem says where to draw through :meth:`problems.base.Problem.plot_slice`: a regular 2-D grid
of inputs with the reference there (x–t maps for Burgers and Schrödinger, x–y for Kovasznay, the
plane z = 0 at t = 1 for Beltrami). One row per field (and per derived field such as |h|); columns:
prediction, reference (same colour scale), |prediction − reference|.

A run directory is enough to redraw: ``.hydra/config.yaml`` rebuilds the problem and the network,
``checkpoint.pt`` (or ``model.pt``) holds the weights (:func:`load_run`); so is a packed run whose
weights its part keeps (:mod:`pinnbench.packed`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from omegaconf import OmegaConf

from pinnbench import packed, records
from pinnbench.errors import ConfigError
from pinnbench.network import MLP, network_for
from problems.base import Problem

FIELDS_FILE = "fields.png"


def load_run(run_dir: str | Path) -> tuple[Problem, MLP]:
    """The problem (on the CPU) and the trained network of a run directory, or of a packed run."""
    run_dir = Path(run_dir)
    found = packed.locate(run_dir)
    if found:
        return _rebuild(found.packed.text(found.run, "config"), _packed_weights(run_dir, found))
    config_path, checkpoint_path = run_dir / ".hydra" / "config.yaml", run_dir / records.CHECKPOINT
    if not config_path.is_file():
        raise ConfigError(f"{run_dir} is not a run directory: it has no .hydra/config.yaml.")
    weights_path = run_dir / records.MODEL  # compact records keep the weights alone
    if not checkpoint_path.is_file() and not weights_path.is_file():
        raise ConfigError(f"{run_dir} has no {records.CHECKPOINT} (nor {records.MODEL}) yet: nothing trained to draw.")
    weights = records.load_checkpoint(checkpoint_path)["model"] if checkpoint_path.is_file() else \
        records.load_checkpoint(weights_path)
    return _rebuild(config_path.read_text(), weights)


def _packed_weights(run_dir: Path, found: packed.Located) -> dict:
    weights = found.packed.weights(found.run)
    if weights is None:
        raise ConfigError(f"{run_dir}: its packed records keep no weights (a part keeps those of the runs its report "
                          f"draws, see docs/records.md); nothing to draw.")
    return weights


def _rebuild(config_text: str | None, weights: dict) -> tuple[Problem, MLP]:
    """The problem (on the CPU) and the network of a run's configuration, with ``weights`` loaded."""
    from pinnbench.settings import DTYPES, run_options, typed_options

    if config_text is None:
        raise ConfigError("the run records no .hydra/config.yaml: its problem cannot be rebuilt.")
    cfg = OmegaConf.create(config_text)
    cfg.device = "cpu"
    run = run_options(cfg)
    problem_cls, problem_options = typed_options("problem", run.problem)
    dtype = DTYPES[run.dtype]
    problem: Problem = problem_cls(problem_options, device="cpu", dtype=dtype)
    model = network_for(problem, run.network).to(dtype)
    model.load_state_dict(weights)
    return problem, model.eval()


def _with_derived(problem: Problem, values: torch.Tensor) -> dict[str, np.ndarray]:
    """Every field and derived field of ``values`` [N, n_fields] by name, as float64 arrays."""
    columns = {name: values[:, k] for k, name in enumerate(problem.field_names)}
    columns.update(problem.derived_fields(values))
    return {name: v.detach().cpu().double().numpy() for name, v in columns.items()}


def draw(problem: Problem, model: torch.nn.Module, out_path: str | Path, title: str = "") -> Path:
    """Draw prediction, reference and error of every field on the problem's plot slice into
    ``out_path`` (the format follows its suffix)."""
    fig = figure(problem, model, title)
    out_path = Path(out_path)
    with records.atomic_path(out_path) as tmp:
        fig.savefig(tmp, format=out_path.suffix.lstrip(".") or "png", dpi=110)
    return out_path


@torch.no_grad()
def figure(problem: Problem, model: torch.nn.Module, title: str = "") -> Figure:
    """Prediction, reference and |error| of every field on the problem's plot slice; each error
    panel states its MSE on the slice and the reference it is taken against."""
    where = problem.plot_slice()
    inputs = torch.as_tensor(where.inputs, device=problem.device, dtype=problem.dtype)
    predicted = _with_derived(problem, model(inputs))
    reference = _with_derived(problem, torch.as_tensor(where.fields, dtype=torch.float64))
    horizontal, vertical = where.axes
    extent = (where.inputs[:, horizontal].min(), where.inputs[:, horizontal].max(),
              where.inputs[:, vertical].min(), where.inputs[:, vertical].max())

    fig = Figure(figsize=(12, 2.9 * len(predicted)), layout="constrained")
    axes = fig.subplots(len(predicted), 3, squeeze=False)
    for row, name in zip(axes, predicted):
        pred, ref = predicted[name].reshape(where.shape), reference[name].reshape(where.shape)
        error = np.abs(pred - ref)
        low, high = ref.min(), ref.max()
        panels = [(pred, f"{name} predicted", dict(vmin=low, vmax=high, cmap="viridis")),
                  (ref, f"{name} reference", dict(vmin=low, vmax=high, cmap="viridis")),
                  (error, f"|error| of {name}: MSE {np.mean(error ** 2):.2e} on this slice,\n"
                          f"against {where.reference}", dict(cmap="magma"))]
        for ax, (image, label, style) in zip(row, panels):
            shown = ax.imshow(image, origin="lower", extent=extent, aspect="auto", interpolation="nearest", **style)
            fig.colorbar(shown, ax=ax)
            ax.set_title(label, fontsize=10)
            ax.set_xlabel(problem.input_names[horizontal])
            ax.set_ylabel(problem.input_names[vertical])
    fig.suptitle(" — ".join(part for part in (title or problem.name, where.title) if part))
    return fig


def _title(run_dir: Path, problem: Problem) -> str:
    summary = packed.read_summary(run_dir) or {}
    parts = [problem.name, summary.get("method"), summary.get("n_losses") and f"{summary['n_losses']} losses",
             summary.get("iterations") and f"{summary['iterations']} iterations",
             summary.get("test_mse") is not None and _test_error(summary)]
    return ", ".join(str(p) for p in parts if p)


def _test_error(summary: dict) -> str:
    """``test MSE 1.52e-02 on the test grid, against the paper's reference data``: the run's scored error."""
    from pinnbench.cli import REFERENCES

    reference = summary.get("test_reference", "exact")
    return f"test MSE {summary['test_mse']:.2e} on the test grid, against {REFERENCES.get(reference, reference)}"


def plot_run(run_dir: str | Path, out_path: str | Path | None = None) -> Path:
    """Draw the fields of the run in ``run_dir`` into ``out_path`` (default ``run_dir/fields.png``; for a
    packed run, which has no directory, ``<run name>-fields.png`` in the working directory)."""
    run_dir = Path(run_dir)
    problem, model = load_run(run_dir)
    if out_path is None:
        out_path = Path(f"{run_dir.name}-{FIELDS_FILE}") if packed.locate(run_dir) else run_dir / FIELDS_FILE
    return draw(problem, model, out_path, _title(run_dir, problem))


def plot_after_training(problem: Problem, model: torch.nn.Module, run_dir: str | Path) -> Path | None:
    """The end-of-run figure (``plot: true``); a failure to draw is reported, not fatal to the run."""
    run_dir = Path(run_dir)
    was_training = model.training
    model.eval()
    try:
        return draw(problem, model, run_dir / FIELDS_FILE, _title(run_dir, problem))
    except Exception as exc:  # the run itself has finished and is recorded; say why there is no figure
        print(f"warning: fields not drawn ({type(exc).__name__}: {exc}); "
              f"try `pinnbench plot {run_dir}`", file=sys.stderr)
        return None
    finally:
        model.train(was_training)
