"""TensorBoard: event files in ``<run dir>/tensorboard/``, so ``tensorboard --logdir <study dir>``
shows every run of a study by its directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pinnbench.trackers.base import Resumed, Tracker


@dataclass
class TensorBoardOptions:
    name: str = "tensorboard"
    subdir: str = "tensorboard"
    """The event files' folder inside the run directory."""


class TensorBoard(Tracker):
    """Scalars per history row (tag = column, step = iteration), the configuration as hyperparameters
    (the HParams dashboard) and as text, the summary as ``summary/<key>`` scalars, the fields figure
    as an image. A resumed run reopens the folder with ``purge_step`` = the first step it sends, so
    any step written after the last hand-over recorded is discarded by TensorBoard's readers."""

    Options = TensorBoardOptions
    packages = ("tensorboard",)
    name = "tensorboard"

    def open(self, state: dict[str, Any] | None, params: dict[str, Any]) -> Resumed:
        from torch.utils.tensorboard import SummaryWriter

        log_dir = self.where.run_dir / self.options.subdir
        resumed = state is not None and state.get("sent_through", -1) >= 0
        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=state["sent_through"] + 1 if resumed else None)
        if state is None:
            self._log_params(params)
        return Resumed(state["run_id"] if state else self.where.name, state["sent_through"] if resumed else -1)

    def _log_params(self, params: dict[str, Any]) -> None:
        from torch.utils.tensorboard.summary import hparams

        for event in hparams(params, {"summary/test_mse": float("nan")}):
            self.writer.file_writer.add_summary(event)
        text = "\n".join(f"    {k}: {v}" for k, v in params.items())
        self.writer.add_text("config", text, 0)

    def log_rows(self, rows: list[dict[str, float]]) -> None:
        for row in rows:
            for key, value in row.items():
                if key != "iteration":
                    self.writer.add_scalar(key, value, row["iteration"])
        self.writer.flush()

    def log_summary(self, metrics: dict[str, float], step: int) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def log_figure(self, path: Path, step: int) -> None:
        import matplotlib.image

        image = matplotlib.image.imread(path)[..., :3]
        self.writer.add_image("fields", image, step, dataformats="HWC")
        self.writer.flush()

    def close(self, status: str | None) -> None:
        self.writer.close()
