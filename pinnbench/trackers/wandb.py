"""Weights & Biases: one W&B run per pinnbench run, named after its directory, grouped by study.

Offline by default: the run is written to ``<run dir>/wandb/offline-run-*/`` and uploaded later
with ``wandb sync``; a resumed run writes a further offline folder with the same run id, which
``wandb sync`` uploads after the first, as one run.
"""

from __future__ import annotations

import json
import os
import secrets
import string
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from pinnbench.errors import ConfigError
from pinnbench.trackers.base import Resumed, Tracker

MODES = ("offline", "online")
ID_LETTERS = string.ascii_lowercase + string.digits


@dataclass
class WandBOptions:
    name: str = "wandb"
    mode: str = "offline"
    project: str = "pinnbench"
    entity: str | None = None
    group: str | None = None
    """None: the study directory's name."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"logger.wandb.mode={self.mode!r} is not a mode; allowed: {', '.join(MODES)}.")


class WandB(Tracker):
    """History rows logged with ``step`` = iteration, the flattened configuration as the run's
    config, the summary as ``summary/<key>`` in the run summary, the fields figure as an image.
    A resumed offline run reads the history steps its earlier offline files hold
    (:func:`offline_history`), so a row written just before a kill is not written twice."""

    Options = WandBOptions
    packages = ("wandb",)
    name = "wandb"

    def open(self, state: dict[str, Any] | None, params: dict[str, Any]) -> Resumed:
        import wandb

        os.environ.setdefault("WANDB_SILENT", "true")
        run_id = state["run_id"] if state else "".join(secrets.choice(ID_LETTERS) for _ in range(8))
        held = -1
        if state is not None and self.options.mode == "offline":
            held = max((step for step, _ in offline_history(self.where.run_dir, run_id)), default=-1)
        elif state is not None:
            held = state.get("sent_through", -1)
        self.run = wandb.init(mode=self.options.mode, dir=str(self.where.run_dir), id=run_id, resume="allow",
                              project=self.options.project, entity=self.options.entity,
                              group=self.options.group or self.where.study, name=self.where.name,
                              config=params, settings=wandb.Settings(console="off", quiet=True))
        return Resumed(run_id, held)

    def log_rows(self, rows: list[dict[str, float]]) -> None:
        for row in rows:
            self.run.log({k: v for k, v in row.items() if k != "iteration"}, step=int(row["iteration"]))

    def log_summary(self, metrics: dict[str, float], step: int) -> None:
        self.run.summary.update(metrics)

    def log_figure(self, path: Path, step: int) -> None:
        import wandb

        self.run.log({"fields": wandb.Image(str(path))}, step=step)

    def close(self, status: str | None) -> None:
        self.run.finish(exit_code=0 if status is not None else 1)


# ----- reading offline run files ------------------------------------------------------------------
BLOCK, HEADER, RECORD_HEADER = 32768, 7, 7
FULL, LAST = 1, 4


def _records(path: Path) -> Iterator[Any]:
    """The protobuf records of a ``.wandb`` file: a 7-byte header (``:W&B``, magic, version), then
    32 KiB blocks of chunks, each with a 7-byte header (checksum, length, type: full, first, middle,
    last); a record cut off by a kill ends the scan."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    if data[:4] != b":W&B":
        return
    position, pending = HEADER, b""
    while position + RECORD_HEADER <= len(data):
        left = BLOCK - position % BLOCK
        if left < RECORD_HEADER:  # a block's tail too short for a chunk header is padding
            position += left
            continue
        _, length, kind = struct.unpack("<IHB", data[position:position + RECORD_HEADER])
        position += RECORD_HEADER
        if kind == 0 or position + length > len(data):
            return
        pending += data[position:position + length]
        position += length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def offline_history(run_dir: Path, run_id: str) -> list[tuple[int, dict[str, Any]]]:
    """(step, {key: value}) of every history record of the offline run ``run_id`` under ``run_dir``,
    its offline folders in the order they were written; W&B's own keys (``_step``, …) left out."""
    rows = []
    for path in sorted((run_dir / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb")):
        for record in _records(path):
            if record.WhichOneof("record_type") != "history":
                continue
            values = {(item.key or "/".join(item.nested_key)): json.loads(item.value_json)
                      for item in record.history.item}
            rows.append((record.history.step.num, {k: v for k, v in values.items() if not k.startswith("_")}))
    return rows
