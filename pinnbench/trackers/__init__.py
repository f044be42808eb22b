"""Experiment trackers (``logger=``): TensorBoard, MLflow and Weights & Biases as views of a run's records.

The records (``history.csv``, ``summary.json``, ``checkpoint.pt``) stay the source of truth; a
tracker receives copies. :func:`chosen` validates the ``logger`` node before any training (a
missing package is a :class:`~pinnbench.errors.ConfigError` naming the extra to install);
:class:`Trackers` fans the trainer's records out to every chosen tracker.

Exact across kill and resume: rows are handed over only after the checkpoint that holds them is
written, so a tracker never holds a step the checkpoint lacks; ``trackers.json`` in the run
directory keeps each tracker run's id and the last step sent (written after each hand-over). A
resumed run reopens the same tracker run, which reports the last step it really holds (MLflow
asks its store, W&B reads its offline files, TensorBoard purges later steps), and sends the rest.
A tracker that fails (unwritable directory, full disk, a server gone) is reported once and
switched off; the run and its records go on.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from pinnbench import records
from pinnbench.errors import ConfigError
from pinnbench.trackers.base import Tracker, Where, numbers, param_value

STATE = "trackers.json"
"""Per run: ``{tracker: {"run_id": ..., "sent_through": last iteration handed over}}``."""
EXTRA = "pip install 'pinnbench[trackers]'"


def _available() -> list[str]:
    from pinnbench.cli import config_dir

    return sorted(p.stem for p in (config_dir() / "logger").glob("*.yaml"))


def chosen(node: Any) -> list[tuple[type[Tracker], Any]]:
    """(class, validated options) of every tracker in the ``logger`` node (``logger=none``: none)."""
    from pinnbench.settings import typed_options

    if node is None:
        return []
    if not isinstance(node, DictConfig):
        raise ConfigError(f"logger must be chosen from configs/logger/ (allowed: {', '.join(_available())}); "
                          f"got {node!r}.")
    result = []
    for key in node:
        if not isinstance(node[key], DictConfig) or "_target_" not in node[key]:
            raise ConfigError(f"logger.{key} is not a logger; allowed: {', '.join(_available())}.")
        cls, options = typed_options(f"logger.{key}", node[key])
        missing = [m for m in cls.packages if importlib.util.find_spec(m) is None]
        if missing:
            raise ConfigError(f"logger={key} needs the {missing[0]} package, which is not installed; "
                              f"install it with {EXTRA}.")
        result.append((cls, options))
    return result


def flat_params(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The resolved configuration as ``a.b.c: value`` hyperparameters."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            out.update(flat_params(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = param_value(value)
    return out


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


class Trackers:
    """The chosen trackers of one run. Every call into a tracker is guarded: the first exception
    is reported (one line) and that tracker is switched off for the rest of the run."""

    def __init__(self, chosen_trackers: list[tuple[type[Tracker], Any]], where: Where) -> None:
        self.where = where
        self.live: dict[str, Tracker] = {cls.name: cls(options, where) for cls, options in chosen_trackers}
        self.state: dict[str, dict[str, Any]] = {}
        self.state_path = where.run_dir / STATE

    def __bool__(self) -> bool:
        return bool(self.live)

    def _guard(self, name: str, what: str, call) -> bool:
        try:
            call()
            return True
        except Exception as exc:  # a view must never cost the run
            _warn(f"logger {name} failed while {what} ({type(exc).__name__}: {' '.join(str(exc).split())[:300]}); "
                  f"it is off for the rest of this run, whose own records in {self.where.run_dir} are complete.")
            self.live.pop(name, None)
            return False

    def open(self, config: dict[str, Any], history: list[dict[str, Any]]) -> None:
        """Open (or continue) every tracker run, then hand over the rows already checkpointed."""
        if not self.live:
            return
        stored = self._stored()
        params = flat_params(config)
        for name, tracker in list(self.live.items()):
            def start(name=name, tracker=tracker):
                resumed = tracker.open(stored.get(name), params)
                self.state[name] = {"run_id": resumed.run_id, "sent_through": resumed.last_step}
            self._guard(name, "starting", start)
        self._write_state()
        self.send(history)

    def send(self, history: list[dict[str, Any]]) -> None:
        """Hand every tracker the rows of ``history`` it has not had yet (call after a checkpoint)."""
        if not self.live:
            return
        for name, tracker in list(self.live.items()):
            after = self.state[name]["sent_through"]
            rows = [{"iteration": r["iteration"], **numbers(r)} for r in history if r["iteration"] > after]
            if rows and self._guard(name, "logging history rows", lambda: tracker.log_rows(rows)):
                self.state[name]["sent_through"] = rows[-1]["iteration"]
        self._write_state()

    def finish(self, summary: dict[str, Any]) -> None:
        """The final summary's numbers (``summary/<key>``), at the last iteration."""
        metrics = {f"summary/{k}": v for k, v in numbers(summary).items()}
        step = int(summary.get("iterations") or 0)
        for name, tracker in list(self.live.items()):
            self._guard(name, "logging the summary", lambda: tracker.log_summary(metrics, step))

    def figure(self, path: Path | None, step: int) -> None:
        if path is None or not Path(path).exists():
            return
        for name, tracker in list(self.live.items()):
            self._guard(name, "logging the fields figure", lambda: tracker.log_figure(Path(path), step))

    def close(self, status: str | None) -> None:
        for name, tracker in list(self.live.items()):
            self._guard(name, "closing", lambda: tracker.close(status))
        self.live.clear()

    def _write_state(self) -> None:
        if self.state:
            try:
                records.write_json(self.state_path, {**self._stored(), **self.state})
            except OSError as exc:
                _warn(f"{self.state_path} cannot be written ({exc}); a resumed run may repeat tracker steps.")

    def _stored(self) -> dict[str, Any]:
        try:
            return records.read_json(self.state_path) if self.state_path.exists() else {}
        except (OSError, ValueError):
            return {}


__all__ = ["STATE", "Tracker", "Trackers", "Where", "chosen", "flat_params", "numbers"]
