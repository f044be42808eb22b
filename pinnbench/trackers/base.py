"""What every experiment tracker implements: a view of a run's records, never their source.

A :class:`Tracker` receives what the trainer records, in the order it is recorded: the flattened
resolved configuration once (:meth:`Tracker.open`), history rows after each checkpoint
(:meth:`Tracker.log_rows`, step = iteration), the final summary's numbers (:meth:`Tracker.log_summary`)
and the fields figure (:meth:`Tracker.log_figure`). ``open`` continues the tracker run of an
interrupted run and says how far that run's steps already go, so a resumed run sends each step once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar


@dataclass(frozen=True)
class Where:
    """Where a run's tracker run lives: the run directory, the study (sweep) directory it belongs
    to, the tracker run's name (the run directory below the study) and the study's name."""

    run_dir: Path
    study_dir: Path

    @property
    def name(self) -> str:
        try:
            return self.run_dir.resolve().relative_to(self.study_dir.resolve()).as_posix()
        except ValueError:
            return self.run_dir.name

    @property
    def study(self) -> str:
        return self.study_dir.resolve().name


@dataclass
class Resumed:
    """A tracker run opened: its id and the last step it already holds (-1: none)."""

    run_id: str
    last_step: int


class Tracker:
    """One backend. ``Options`` (a dataclass) types its YAML in ``configs/logger/``; ``packages``
    are the modules it needs (checked before training)."""

    Options: ClassVar[type]
    packages: ClassVar[tuple[str, ...]] = ()
    name: ClassVar[str] = ""

    def __init__(self, options: Any, where: Where) -> None:
        self.options, self.where = options, where

    def open(self, state: dict[str, Any] | None, params: dict[str, Any]) -> Resumed:
        """Start a tracker run, or continue the one in ``state`` (``run_id``, ``sent_through``),
        logging ``params`` (the flattened configuration) when it is new."""
        raise NotImplementedError

    def log_rows(self, rows: list[dict[str, float]]) -> None:
        """History rows, each with its ``iteration`` (the step) and its numbers."""
        raise NotImplementedError

    def log_summary(self, metrics: dict[str, float], step: int) -> None:
        raise NotImplementedError

    def log_figure(self, path: Path, step: int) -> None:
        raise NotImplementedError

    def close(self, status: str | None) -> None:
        """Close the tracker run; ``status`` is the run's final status, None when it stops unfinished."""


def numbers(row: dict[str, Any]) -> dict[str, float]:
    """The numeric entries of a record (booleans as 0/1), ``iteration`` and text left out."""
    return {k: float(v) for k, v in row.items() if k != "iteration" and isinstance(v, (int, float))}


def param_value(value: Any) -> Any:
    """A configuration value as trackers take it: numbers, text and booleans as they are, anything else as text."""
    return value if isinstance(value, (int, float, str, bool)) else str(value)
