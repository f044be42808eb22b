"""MLflow: one experiment per study, one MLflow run per pinnbench run, named after its directory.

Without a tracking URI the store is MLflow's local SQLite backend, ``sqlite:///<study dir>/mlflow.db``
(the file store is deprecated and refused by MLflow 3.13+), with artifacts beside it in
``mlartifacts/``; ``mlflow ui --backend-store-uri sqlite:///<study dir>/mlflow.db`` shows it.
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from pinnbench.trackers.base import Resumed, Tracker

DATABASE = "mlflow.db"
SQLITE = "sqlite:///"
MAX_METRICS, MAX_PARAMS = 1000, 100
"""MLflow's limits per ``log_batch`` call."""


@dataclass
class MLflowOptions:
    name: str = "mlflow"
    tracking_uri: str | None = None
    """None: ``sqlite:///<study dir>/mlflow.db``."""
    experiment: str | None = None
    """None: the study directory's name."""
    artifact_location: str | None = None
    """None: ``mlartifacts/`` beside the database file of a SQLite store, the server's default otherwise."""


def _batches(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


class MLflow(Tracker):
    """History rows as metrics (step = iteration; one ``log_batch`` transaction per batch of whole
    rows), the flattened configuration as parameters, the summary as ``summary/<key>`` metrics, the
    fields figure as an artifact. A resumed run asks the store for the last step of ``seconds``
    (present in every row), so a row sent just before a kill is not sent twice."""

    Options = MLflowOptions
    packages = ("mlflow",)
    name = "mlflow"

    def _store(self) -> tuple[str, str | None, Path | None]:
        """(tracking URI, artifact location, lock file): a SQLite store keeps its artifacts beside its
        file (else MLflow would put them in ./mlruns) and is created under a lock."""
        uri = self.options.tracking_uri or f"sqlite:///{self.where.study_dir.resolve() / DATABASE}"
        if not uri.startswith(SQLITE):
            return uri, self.options.artifact_location, None
        database = Path(uri[len(SQLITE):]).resolve()
        database.parent.mkdir(parents=True, exist_ok=True)
        artifacts = self.options.artifact_location or (database.parent / "mlartifacts").as_uri()
        return uri, artifacts, database.parent / f".{database.name}.lock"

    def open(self, state: dict[str, Any] | None, params: dict[str, Any]) -> Resumed:
        from mlflow.tracking import MlflowClient

        for name in ("mlflow", "alembic"):  # their INFO lines (creating the database tables) would flood a sweep's log
            logging.getLogger(name).setLevel(logging.WARNING)
        uri, artifacts, lock = self._store()
        with FileLock(lock) if lock else nullcontext():  # parallel jobs of a sweep create the database once
            self.client = MlflowClient(tracking_uri=uri)
            run_id = state["run_id"] if state is not None and self._exists(state["run_id"]) else None
            if run_id is None:  # a new run, or one whose store was deleted since: all its rows are sent again
                run_id = self._create(artifacts, params)
            else:
                self.client.update_run(run_id, status="RUNNING")
        self.run_id = run_id
        return Resumed(run_id, self._last_step())

    def _exists(self, run_id: str) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_run(run_id)
            return True
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return False
            raise

    def _create(self, artifacts: str | None, params: dict[str, Any]) -> str:
        from mlflow.entities import Param

        experiment = self.options.experiment or self.where.study
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else self.client.create_experiment(experiment, artifacts)
        run = self.client.create_run(experiment_id, run_name=self.where.name,
                                     tags={"pinnbench.run_dir": str(self.where.run_dir.resolve()),
                                           "pinnbench.study": self.where.study})
        entries = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for batch in _batches(entries, MAX_PARAMS):
            self.client.log_batch(run.info.run_id, params=batch)
        return run.info.run_id

    def _last_step(self) -> int:
        history = self.client.get_metric_history(self.run_id, "seconds")
        return max((m.step for m in history), default=-1)

    def log_rows(self, rows: list[dict[str, float]]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch: list = []
        for row in rows:  # whole rows per batch: a batch is one transaction
            metrics = [Metric(k, v, now, row["iteration"]) for k, v in row.items() if k != "iteration"]
            if batch and len(batch) + len(metrics) > MAX_METRICS:
                self.client.log_batch(self.run_id, metrics=batch)
                batch = []
            batch += metrics
        if batch:
            self.client.log_batch(self.run_id, metrics=batch)

    def log_summary(self, metrics: dict[str, float], step: int) -> None:
        self.log_rows([{"iteration": step, **metrics}])

    def log_figure(self, path: Path, step: int) -> None:
        self.client.log_artifact(self.run_id, str(path))

    def close(self, status: str | None) -> None:
        if status is not None:
            self.client.set_tag(self.run_id, "pinnbench.status", status)
            self.client.set_terminated(self.run_id, "FINISHED")

