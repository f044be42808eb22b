"""Compact run records for committing a study: per run, ``summary.json``, ``history.csv``, the
resolved configuration and overrides (``.hydra/config.yaml``, ``.hydra/overrides.yaml``) and the
trained network's weights (``model.pt``, the ``model`` entry of the checkpoint: about 40 KB at the
paper's network, against a checkpoint's optimiser and method state, RNG states and history); no
locks, logs or figures. Only runs with a summary are copied (finished, diverged or failed), so an
interrupted study can be committed part by part while a relaunch of its sweep finishes the rest.
Every file is written atomically; a run already compacted is copied again (its files replaced).
"""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

from pinnbench import records
from pinnbench.errors import ConfigError

KEPT = (records.SUMMARY, records.HISTORY, ".hydra/config.yaml", ".hydra/overrides.yaml")


def compact_run(run_dir: Path, dest: Path) -> None:
    """The compact records of ``run_dir`` into ``dest`` (created)."""
    for name in KEPT:
        if (run_dir / name).is_file():
            with records.atomic_path(dest / name) as tmp:
                shutil.copyfile(run_dir / name, tmp)
    checkpoint = run_dir / records.CHECKPOINT
    if checkpoint.is_file():
        records.save_checkpoint(dest / records.MODEL, records.load_checkpoint(checkpoint)["model"])


def compact(src: str | Path, dest: str | Path, match: Sequence[str] = ()) -> list[Path]:
    """The compact records of every run below ``src`` into the same layout below ``dest``, or only
    of the runs whose path relative to ``src`` matches one of the shell patterns ``match`` (e.g.
    ``burgers-cpu/dcgd-*``: studies that share a sweep directory, for Adam's seconds, commit their
    own runs); returns the runs copied (relative paths)."""
    src, dest = Path(src), Path(dest)
    if not src.is_dir():
        raise ConfigError(f"{src} is not a directory of runs.")
    if dest.resolve() == src.resolve() or src.resolve() in dest.resolve().parents:
        raise ConfigError(f"{dest} is {src} or inside it; compact into another directory.")
    copied = []
    for summary in sorted(src.rglob(records.SUMMARY)):
        relative = summary.parent.relative_to(src)
        if match and not any(fnmatch.fnmatchcase(relative.as_posix(), pattern) for pattern in match):
            continue
        compact_run(summary.parent, dest / relative)
        copied.append(relative)
    return copied


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
