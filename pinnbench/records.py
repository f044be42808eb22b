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

HISTORY = "history.csv"
SUMMARY = "summary.json"
CHECKPOINT = "checkpoint.pt"


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
HISTORY_LAST = ("test_mse",)


def write_history(path: str | os.PathLike, rows: list[dict[str, Any]]) -> None:
    """history.csv: iteration, seconds, lr, then per-loss columns, then test errors."""
    frame = pd.DataFrame(rows)
    middle = [c for c in frame.columns if c not in HISTORY_FIRST + HISTORY_LAST and not c.startswith("mse_")]
    errors = [c for c in frame.columns if c in HISTORY_LAST or c.startswith("mse_")]
    with atomic_path(path) as tmp:
        frame[[c for c in HISTORY_FIRST if c in frame] + middle + errors].to_csv(tmp, index=False)


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=False)


def read_summary(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The run's summary, or None when it has none yet."""
    path = Path(run_dir) / SUMMARY
    return read_json(path) if path.exists() else None
