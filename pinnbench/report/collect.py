"""Read run directories into one tidy table: one row per run.

A run directory is any directory holding ``.hydra/``, ``summary.json`` or ``history.csv`` (see
:mod:`pinnbench.records`). The setting (problem, method, losses, seed, budget) comes from
``summary.json`` when the run finished, otherwise from ``.hydra/config.yaml``; a directory with
no summary is an *incomplete* run (interrupted, still running, or half-written). Every run found
gets a row; only completed runs with a finite test MSE are ``included`` in the means.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
from omegaconf import OmegaConf

from pinnbench import records
from pinnbench.naming import extra_overrides
from pinnbench.settings import typed_options
from pinnbench.errors import ConfigError

OUR_PACKAGES = ("pinnbench.", "problems.")
"""The only packages whose classes the reporter imports when a run's configuration names one."""

COMPLETED, INCOMPLETE, UNREADABLE = "completed", "incomplete", "unreadable"
"""Statuses besides those a run writes itself (``diverged``, ``failed``)."""

SETTING = ["problem", "size", "n_losses", "budget", "budget_amount", "variant"]
"""What makes two runs comparable; a setting's runs differ by method and seed."""

COLUMNS = ["run_dir", "problem", "size", "method", "n_losses", "seed", "budget", "budget_amount", "variant",
           "device", "status", "included", "note", "iterations", "seconds", "ms_per_iteration", "test_mse",
           "best_test_mse"]


def is_run_dir(path: Path) -> bool:
    return (path / ".hydra").is_dir() or (path / records.SUMMARY).is_file() or (path / records.HISTORY).is_file()


def find_run_dirs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Every run directory at or below ``paths`` (any depth), sorted; a run's own subdirectories
    are not searched. Raises :class:`ConfigError` for a path that is missing or holds no run."""
    found: list[Path] = []
    for given in paths:
        root = Path(given)
        if not root.is_dir():
            raise ConfigError(f"{given} is not a directory of runs (it does not exist or is a file).")
        before = len(found)
        for here, dirs, _ in os.walk(root):
            here_path = Path(here)
            if is_run_dir(here_path):
                found.append(here_path)
                dirs.clear()
            else:
                dirs[:] = sorted(d for d in dirs if d != ".hydra")
        if len(found) == before:
            raise ConfigError(f"{given} holds no run directory (none with .hydra/, {records.SUMMARY} "
                              f"or {records.HISTORY}).")
    return sorted(set(found))


def variant_tag(variant: str) -> str:
    """An 8-character hash of a variant, to name its figures' files."""
    return hashlib.sha1(variant.encode()).hexdigest()[:8] if variant else ""


def variant(overrides: list[str]) -> str:
    """The overrides that neither a run directory's name nor the method's options spell out, joined
    by ``;``: runs of one setting differ only by method and seed. Empty with default settings."""
    return ";".join(o for o in extra_overrides(overrides) if not o.startswith("method."))


def method_label(method_node: dict[str, Any], overrides: list[str]) -> str | None:
    """The method as reports name it: its label (``mconfig``, ``torchjd-upgrad``), and any other
    option changed by an override in brackets (``mconfig [refresh=2]``)."""
    name = method_node.get("name")
    if not str(method_node.get("_target_", "")).startswith(OUR_PACKAGES):
        return name  # never import a class a run directory names unless it is one of ours
    try:
        _, options = typed_options("method", OmegaConf.create(method_node))
    except Exception:  # a method this installation does not have: its name is all we know
        return name
    changed = [o.removeprefix("method.") for o in extra_overrides(overrides) if o.startswith("method.")]
    rest = [o for o in changed if o.split("=")[0].split(".")[0] not in type(options).label_keys]
    return options.label + (f" [{';'.join(rest)}]" if rest else "")


def _from_config(run_dir: Path) -> dict[str, Any]:
    """Setting keys from ``.hydra/config.yaml`` and ``.hydra/overrides.yaml`` (empty if absent)."""
    row: dict[str, Any] = {}
    config_path = run_dir / ".hydra" / "config.yaml"
    if config_path.is_file():
        cfg = OmegaConf.to_container(OmegaConf.load(config_path), resolve=False)
        problem, method, budget = cfg.get("problem") or {}, cfg.get("method") or {}, cfg.get("budget") or {}
        size = problem.get("size")
        amount = budget.get("seconds") if budget.get("kind") == "walltime" else (
            budget.get("iterations") or (problem.get("sizes") or {}).get(size, {}).get("iterations"))
        row.update(problem=problem.get("name"), size=size, method=method.get("name"), n_losses=cfg.get("n_losses"),
                   seed=cfg.get("seed"), budget=budget.get("kind"), budget_amount=amount, device=cfg.get("device"))
    overrides_path = run_dir / ".hydra" / "overrides.yaml"
    overrides = [str(o) for o in OmegaConf.load(overrides_path)] if overrides_path.is_file() else []
    row["variant"] = variant(overrides)
    if config_path.is_file() and method:
        row["method"] = method_label(method, overrides)
    return row


def _last_history_row(run_dir: Path) -> dict[str, Any]:
    path = run_dir / records.HISTORY
    if not path.is_file():
        return {}
    try:
        history = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return {}
    return {} if history.empty else {"iterations": int(history["iteration"].iloc[-1]),
                                     "seconds": float(history["seconds"].iloc[-1])}


def read_run(run_dir: str | os.PathLike) -> dict[str, Any]:
    """One row of the runs table for ``run_dir``."""
    run_dir = Path(run_dir)
    row: dict[str, Any] = {"run_dir": str(run_dir), "variant": ""}
    try:
        row.update(_from_config(run_dir))
    except Exception as exc:  # a half-written or hand-edited YAML file
        row["note"] = f".hydra/ unreadable ({type(exc).__name__}: {exc})"
    try:
        summary = records.read_summary(run_dir)
    except (records.CorruptRecord, json.JSONDecodeError, UnicodeDecodeError) as exc:
        row.update(status=UNREADABLE, note=str(exc), **_last_history_row(run_dir))
        return row
    if summary is None:
        row.update(status=INCOMPLETE, note=f"no {records.SUMMARY}: interrupted, still running or half-written",
                   **_last_history_row(run_dir))
        return row
    named = row.get("method") is not None  # the label from the configuration also names changed options
    row.update({k: v for k, v in summary.items()
                if (k in COLUMNS or k.startswith("mse_")) and v is not None and not (named and k == "method")})
    row.setdefault("status", UNREADABLE)
    if row["status"] != COMPLETED:
        row.setdefault("note", f"{row['status']}: {summary['error']}" if summary.get("error")
                       else f"{row['status']} after {row.get('iterations')} iterations")
    return row


def collect_runs(paths: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """The runs table: one row per run directory below ``paths``, columns :data:`COLUMNS` then the
    per-field errors ``mse_<field>``; ``included`` marks completed runs with a finite test MSE."""
    rows = [read_run(d) for d in find_run_dirs(paths)]
    for row in rows:
        mse = row.get("test_mse")
        finite = isinstance(mse, (int, float)) and math.isfinite(mse)
        row["included"] = row["status"] == COMPLETED and finite
        if row["status"] == COMPLETED and not finite:
            row["note"] = f"completed, but its test MSE is {mse}"
    frame = pd.DataFrame(rows)
    fields = sorted(c for c in frame.columns if c.startswith("mse_"))
    frame = frame.reindex(columns=COLUMNS + fields)
    for key in ("n_losses", "seed", "iterations"):
        frame[key] = frame[key].astype("Int64")
    for key in ("budget_amount", "seconds", "ms_per_iteration", "test_mse", "best_test_mse", *fields):
        frame[key] = pd.to_numeric(frame[key], errors="coerce").astype(float)
    frame["included"] = frame["included"].astype(bool)
    frame["variant"] = frame["variant"].fillna("")
    return frame.sort_values(["problem", "size", "n_losses", "budget", "budget_amount", "variant", "method", "seed",
                              "run_dir"], na_position="last", ignore_index=True)
