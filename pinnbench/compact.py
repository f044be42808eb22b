"""Compact run records for committing a study: per run, ``summary.json``, ``history.csv``, the
resolved configuration and overrides (``.hydra/config.yaml``, ``.hydra/overrides.yaml``) and the
trained network's weights (``model.pt``, the ``model`` entry of the checkpoint: about 40 KB at the
paper's network, against a checkpoint's optimiser and method state, RNG states and history); no
locks, logs or figures. Only runs with a summary are copied (finished, diverged or failed), so an
interrupted study can be committed part by part while a relaunch of its sweep finishes the rest.
Every file is written atomically. A run already compacted is left as it is when its records are the
same (the same bytes, and the same weights in ``model.pt``, whose file bytes differ from save to save),
so compacting a study again touches only the runs that changed.
"""

from __future__ import annotations

import filecmp
import fnmatch
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

import torch

from pinnbench import records
from pinnbench.errors import ConfigError

KEPT = (records.SUMMARY, records.HISTORY, ".hydra/config.yaml", ".hydra/overrides.yaml")


def same_weights(path: Path, model: dict) -> bool:
    """Whether ``path`` holds the state dict ``model``: the same names, dtypes, shapes and values."""
    if not path.is_file():
        return False
    try:
        kept = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # unreadable: write it again
        return False
    return kept.keys() == model.keys() and all(
        kept[k].dtype == model[k].dtype and kept[k].shape == model[k].shape and torch.equal(kept[k], model[k])
        for k in model)


def compact_run(run_dir: Path, dest: Path) -> bool:
    """The compact records of ``run_dir`` into ``dest`` (created); whether any file was written
    (False: ``dest`` already held the same records)."""
    written = False
    for name in KEPT:
        source = run_dir / name
        if source.is_file() and not ((dest / name).is_file() and filecmp.cmp(source, dest / name, shallow=False)):
            with records.atomic_path(dest / name) as tmp:
                shutil.copyfile(source, tmp)
            written = True
    checkpoint = run_dir / records.CHECKPOINT
    if checkpoint.is_file():
        model = records.load_checkpoint(checkpoint)["model"]
        if not same_weights(dest / records.MODEL, model):
            records.save_checkpoint(dest / records.MODEL, model)
            written = True
    return written


def finished_runs(src: Path, match: Sequence[str] = ()) -> list[Path]:
    """The runs below ``src`` that have a summary (relative paths, sorted), or only those matching one
    of the shell patterns ``match``."""
    found = (summary.parent.relative_to(src) for summary in sorted(src.rglob(records.SUMMARY)))
    return [run for run in found if not match or any(fnmatch.fnmatchcase(run.as_posix(), p) for p in match)]


def compact(src: str | Path, dest: str | Path, match: Sequence[str] = ()) -> list[Path]:
    """The compact records of every run below ``src`` into the same layout below ``dest``, or only
    of the runs whose path relative to ``src`` matches one of the shell patterns ``match`` (e.g.
    ``burgers-cpu/dcgd-*``: studies that share a sweep directory, for Adam's seconds, commit their
    own runs); returns the runs whose records were written (relative paths), leaving out those
    ``dest`` already held unchanged."""
    src, dest = Path(src), Path(dest)
    if not src.is_dir():
        raise ConfigError(f"{src} is not a directory of runs.")
    if dest.resolve() == src.resolve() or src.resolve() in dest.resolve().parents:
        raise ConfigError(f"{dest} is {src} or inside it; compact into another directory.")
    from pinnbench.packed import is_packed

    if is_packed(dest):
        raise ConfigError(f"{dest} holds packed records: add runs to it with `pinnbench pack {src} {dest}` "
                          f"(docs/records.md).")
    return [run for run in finished_runs(src, match) if compact_run(src / run, dest / run)]


def git_ignore_rule(path: str | Path) -> str | None:
    """The ``.gitignore`` rule (``file:line:pattern``) that keeps ``path`` out of git, or None when
    git would track it, it is outside a git work tree, or git is not installed: compact records
    written below an ignored directory would never be committed."""
    path = Path(path).resolve()
    probe = path / records.SUMMARY  # a rule such as ``runs/`` matches the directory's contents
    try:
        found = subprocess.run(["git", "-C", str(path if path.is_dir() else path.parent), "check-ignore", "-v",
                                "--no-index", str(probe)], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if found.returncode != 0 or not found.stdout.strip():
        return None
    return found.stdout.split("\t")[0]
