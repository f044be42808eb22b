"""Read run directories into one tidy table: one row per run.

A run directory is any directory holding ``.hydra/``, ``summary.json`` or ``history.csv`` (see
:mod:`pinnbench.records`); a directory of packed records (:mod:`pinnbench.packed`) holds its runs
under the paths their directories had. The setting (problem, method, losses, seed, budget) comes from
``summary.json`` when the run finished, otherwise from ``.hydra/config.yaml``; a directory with
no summary is an *incomplete* run (interrupted, still running, or half-written). Every run found
gets a row; only completed runs with a finite value of the chosen error metric (``test_mse`` by
default, see :func:`is_error_column`) are ``included`` in the means.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from pinnbench import packed, records
from pinnbench.naming import extra_overrides, trainer_label
from pinnbench.settings import typed_options
from pinnbench.errors import ConfigError

OUR_PACKAGES = ("pinnbench.", "problems.")
"""The only packages whose classes the reporter imports when a run's configuration names one."""

COMPLETED, DIVERGED, INCOMPLETE, UNREADABLE = "completed", "diverged", "incomplete", "unreadable"
"""Statuses: a run writes ``completed``, ``diverged`` or ``failed``; the reader adds the other two."""

DEFAULT_METRIC = "test_mse"
ERROR_WORDS = {"mse", "rmse", "mae", "l1", "l2", "linf", "err", "error"}
NOT_ERRORS = ("loss_", "cos_", "gnorm_")

ADAM_TIME = 0.0
"""``budget_amount`` of wall-time runs with ``budget.seconds=adam``: each trained for its own seed's
Adam time, so they form one setting (no fixed budget is 0 s)."""

SETTING = ["problem", "size", "n_losses", "budget", "budget_amount", "variant"]
"""What makes two runs comparable; a setting's runs differ by method and seed."""

COLUMNS = ["run_dir", "problem", "size", "method", "n_losses", "seed", "budget", "budget_amount", "variant",
           "device", "status", "included", "note", "iterations", "seconds", "ms_per_iteration", "test_mse",
           "best_test_mse", "commit", "written_at"]


def is_error_column(name: str) -> bool:
    """An error metric (lower is better) as runs record it: a name with one of :data:`ERROR_WORDS`
    among its ``_``-separated words (``test_mse``, ``best_test_mse``, ``mse_u``, ``rel_l2``,
    ``rel_l2_u``, ``test_mse_exact``), and not a loss or a diagnostic (:data:`NOT_ERRORS`)."""
    return not name.startswith(NOT_ERRORS) and bool(ERROR_WORDS & set(name.lower().split("_")))


def is_run_dir(path: Path) -> bool:
    return (path / ".hydra").is_dir() or (path / records.SUMMARY).is_file() or (path / records.HISTORY).is_file()


def find_run_dirs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Every run directory at or below ``paths`` (any depth), and every packed run there under the
    path its directory had, sorted; a run's own subdirectories are not searched. Raises
    :class:`ConfigError` for a path that is missing or holds no run."""
    found: list[Path] = []
    for given in paths:
        root = Path(given)
        if not root.is_dir():
            raise ConfigError(f"{given} is not a directory of runs (it does not exist or is a file).")
        before = len(found)
        for here, dirs, _ in os.walk(root):
            here_path = Path(here)
            if packed.is_packed(here_path):
                found += packed.packed_runs(here_path)
            if is_run_dir(here_path):
                found.append(here_path)
                dirs.clear()
            else:
                dirs[:] = sorted(d for d in dirs if d != ".hydra")
        if len(found) == before:
            raise ConfigError(f"{given} holds no run directory (none with .hydra/, {records.SUMMARY} "
                              f"or {records.HISTORY}) and no packed records.")
    return sorted(set(found))


def variant_tag(variant: str) -> str:
    """An 8-character hash of a variant, to name its figures' files."""
    return hashlib.sha1(variant.encode()).hexdigest()[:8] if variant else ""


TRAINER_OPTIONS = ("method.", "optimizer.", "finish.")
"""Overrides of options that name a trainer (:func:`method_label`) rather than a setting."""


def variant(overrides: list[str]) -> str:
    """The overrides that neither a run directory's name nor the options of the method, the optimiser
    or the finishing phase spell out, joined by ``;``: runs of one setting differ only by method
    (with its optimiser and finish) and seed. Empty with default settings."""
    return ";".join(o for o in extra_overrides(overrides) if not o.startswith(TRAINER_OPTIONS))


def method_label(method_node: dict[str, Any], overrides: list[str], optimizer: str | None = None,
                 finish: str | None = None) -> str | None:
    """The method as reports name it: its label (``mconfig``, ``torchjd-upgrad``), the optimiser and
    the finishing phase where they are not Adam and none (``config+soap``, ``adam+lbfgs``), and any
    other option changed by an override in brackets (``mconfig [refresh=2]``, ``config+soap
    [optimizer.precondition_frequency=10]``)."""
    name = method_node.get("name")
    if not str(method_node.get("_target_", "")).startswith(OUR_PACKAGES):
        return name  # never import a class a run directory names unless it is one of ours
    try:
        _, options = typed_options("method", OmegaConf.create(method_node))
    except Exception:  # a method this installation does not have: its name is all we know
        return name
    changed = [o.removeprefix("method.") for o in extra_overrides(overrides) if o.startswith("method.")]
    rest = [o for o in changed if o.split("=")[0].split(".")[0] not in type(options).label_keys]
    rest += [o for o in extra_overrides(overrides) if o.startswith(TRAINER_OPTIONS[1:])]
    return trainer_label(options.label, optimizer, finish) + (f" [{';'.join(rest)}]" if rest else "")


def _from_config(run_dir: Path) -> dict[str, Any]:
    """Setting keys from ``.hydra/config.yaml`` and ``.hydra/overrides.yaml`` (empty if absent)."""
    row: dict[str, Any] = {}
    config_text, overrides_text = packed.read_text(run_dir, "config"), packed.read_text(run_dir, "overrides")
    if config_text is not None:
        cfg = OmegaConf.to_container(OmegaConf.create(config_text), resolve=False)
        problem, method, budget = cfg.get("problem") or {}, cfg.get("method") or {}, cfg.get("budget") or {}
        size = problem.get("size")
        amount = (ADAM_TIME if budget.get("seconds") == "adam" else budget.get("seconds")) \
            if budget.get("kind") == "walltime" else (
            budget.get("iterations") or (problem.get("sizes") or {}).get(size, {}).get("iterations"))
        row.update(problem=problem.get("name"), size=size, method=method.get("name"), n_losses=cfg.get("n_losses"),
                   seed=cfg.get("seed"), budget=budget.get("kind"), budget_amount=amount, device=cfg.get("device"))
    overrides = [str(o) for o in OmegaConf.create(overrides_text)] if overrides_text is not None else []
    row["variant"] = variant(overrides)
    if config_text is not None and method:
        row["method"] = method_label(method, overrides, (cfg.get("optimizer") or {}).get("name"),
                                     (cfg.get("finish") or {}).get("name"))
    return row


def _last_history_row(run_dir: Path) -> dict[str, Any]:
    """Iterations and seconds of history.csv's last row, and the errors evaluated there."""
    history = read_history(run_dir)
    if history is None or history.empty:
        return {}
    last = history.iloc[-1]
    errors = {k: float(v) for k, v in last.items() if is_error_column(str(k)) and pd.notna(v)}
    return {"iterations": int(last["iteration"]), "seconds": float(last["seconds"]), "errors": errors}


def read_run(run_dir: str | os.PathLike) -> dict[str, Any]:
    """One row of the runs table for ``run_dir``."""
    run_dir = Path(run_dir)
    row: dict[str, Any] = {"run_dir": str(run_dir), "variant": ""}
    try:
        row.update(_from_config(run_dir))
    except Exception as exc:  # a half-written or hand-edited YAML file
        row["note"] = f".hydra/ unreadable ({type(exc).__name__}: {exc})"
    last = _last_history_row(run_dir)
    errors = last.pop("errors", {})
    try:
        summary = packed.read_summary(run_dir)
    except (records.CorruptRecord, json.JSONDecodeError, UnicodeDecodeError) as exc:
        row.update(status=UNREADABLE, note=str(exc), **last)
        return row
    if summary is None:
        row.update(status=INCOMPLETE, note=f"no {records.SUMMARY}: interrupted, still running or half-written", **last)
        return row
    named = row.get("method") is not None  # the label from the configuration also names changed options
    row.update({k: v for k, v in summary.items() if k in COLUMNS and v is not None and not (named and k == "method")})
    row.update({k: v for k, v in (summary.get("provenance") or {}).items() if k in COLUMNS and v is not None})
    if summary.get("budget_from") == "adam":
        row["budget_amount"] = ADAM_TIME
    if summary.get("status") == COMPLETED:  # an error only history.csv records: its final value, if evaluated
        row.update(errors)
    row.update({k: v for k, v in summary.items()
                if is_error_column(k) and isinstance(v, (int, float)) and not isinstance(v, bool)})
    row.setdefault("status", UNREADABLE)
    if row["status"] != COMPLETED:
        row.setdefault("note", f"{row['status']}: {summary['error']}" if summary.get("error")
                       else f"{row['status']} after {row.get('iterations')} iterations")
    return row


def collect_runs(paths: Iterable[str | os.PathLike], metric: str = DEFAULT_METRIC) -> pd.DataFrame:
    """The runs table: one row per run directory below ``paths``, columns :data:`COLUMNS` then every
    other error the runs record (``mse_<field>``, ``rel_l2``, …); ``included`` marks completed runs
    with a finite ``metric``. Raises :class:`ConfigError` for a metric no completed run records."""
    frame = pd.DataFrame([read_run(d) for d in find_run_dirs(paths)])
    errors = sorted(c for c in frame.columns if is_error_column(c) and c not in COLUMNS)
    frame = frame.reindex(columns=list(dict.fromkeys(COLUMNS + errors + [metric])))
    for key in ("n_losses", "seed", "iterations"):
        frame[key] = frame[key].astype("Int64")
    for key in ("budget_amount", "seconds", "ms_per_iteration", "test_mse", "best_test_mse", *errors, metric):
        frame[key] = pd.to_numeric(frame[key], errors="coerce").astype(float)
    check_metric(frame, metric)
    completed = frame["status"].eq(COMPLETED)
    frame["included"] = completed & np.isfinite(frame[metric])
    unmeasured = completed & ~frame["included"]
    frame["note"] = frame["note"].astype(object)
    frame.loc[unmeasured, "note"] = [f"completed, but its {metric} is {v}" if pd.notna(v) else
                                     f"completed, but it records no {metric}" for v in frame.loc[unmeasured, metric]]
    frame["variant"] = frame["variant"].fillna("")
    return frame.sort_values(["problem", "size", "n_losses", "budget", "budget_amount", "variant", "method", "seed",
                              "run_dir"], na_position="last", ignore_index=True)


def available_metrics(runs: pd.DataFrame) -> list[str]:
    """The error columns with a finite value in some completed run."""
    completed = runs[runs["status"].eq(COMPLETED)]
    return [c for c in runs.columns if is_error_column(c) and np.isfinite(completed[c].astype(float)).any()]


def check_metric(runs: pd.DataFrame, metric: str) -> None:
    """Refuse a metric that is not an error column, or that no completed run records (runs written
    before it was recorded); fine when no run has completed yet."""
    available = available_metrics(runs)
    listed = f"available: {', '.join(available) or 'none'}"
    if not is_error_column(metric):
        raise ConfigError(f"--metric {metric}: not an error metric (a name with {', '.join(sorted(ERROR_WORDS))} "
                          f"among its words); {listed}.")
    if metric not in available and runs["status"].eq(COMPLETED).any():
        raise ConfigError(f"--metric {metric}: no completed run records it (records older than the metric, or a "
                          f"misspelt name); {listed}.")


def read_history(run_dir: str | os.PathLike) -> pd.DataFrame | None:
    """A run's history.csv (or its packed history), or None when it has none or it cannot be parsed."""
    found = packed.locate(run_dir)
    if found:
        return found.packed.history(found.run)
    path = Path(run_dir) / records.HISTORY
    try:
        return pd.read_csv(path) if path.is_file() else None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return None
