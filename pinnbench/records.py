"""Run records: one directory per run, every file written atomically.

A run directory holds ``.hydra/`` (the resolved config, written by Hydra), ``history.csv``,
``summary.json`` and ``checkpoint.pt``. A file is first written to a temporary file in the same
directory, flushed to disk, then renamed over its target, so a reader sees the old file or the new
one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import torch

from pinnbench.errors import ConfigError

HISTORY = "history.csv"
SUMMARY = "summary.json"
CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
"""The trained network's weights alone (a state dict), as compact records keep them."""


class CorruptRecord(ConfigError):
    """A run record that exists but cannot be read; the message names the file and what to do."""


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.chmod(0o644)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json(path: str | os.PathLike, data: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


HISTORY_FIRST = ("iteration", "seconds", "lr")
ERROR_PREFIXES = ("test_mse", "mse_", "rel_l2")
"""Test-error columns (``test_mse``, ``test_mse_<reference>``, ``mse_<field>``, ``rel_l2``, …)."""


def is_error_column(name: str) -> bool:
    return name.startswith(ERROR_PREFIXES)


def write_history(path: str | os.PathLike, rows: list[dict[str, Any]]) -> None:
    """history.csv: iteration, seconds, lr, then per-loss columns, then test errors."""
    frame = pd.DataFrame(rows)
    middle = [c for c in frame.columns if c not in HISTORY_FIRST and not is_error_column(c)]
    errors = [c for c in frame.columns if is_error_column(c)]
    with atomic_path(path) as tmp:
        frame[[c for c in HISTORY_FIRST if c in frame] + middle + errors].to_csv(tmp, index=False)


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint at ``path``; a :class:`~pinnbench.errors.ConfigError` naming it when it cannot be read."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # truncated, not a torch file, unpickling error: all say the same to a user
        raise ConfigError(f"{path} cannot be read ({type(exc).__name__}); delete it to train this run from "
                          f"the start, or move the run directory away.") from None


def read_summary(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The run's summary, or None when it has none yet; a :class:`CorruptRecord` naming the file
    when it is not valid JSON."""
    path = Path(run_dir) / SUMMARY
    if not path.exists():
        return None
    try:
        return read_json(path)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptRecord(f"{path} is not valid JSON ({exc}); delete it to train this run again, or move "
                            f"the run directory away.") from None
