"""Each tracker's records read back with the tracker's own reader, as ``{key: [(step, value), ...]}``
in the order the reader gives them, plus what else the tracker holds (parameters, figure, group)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pinnbench import records


@dataclass
class Held:
    """What one tracker run holds."""

    name: str
    group: str
    series: dict[str, list[tuple[int, float]]]
    params: dict[str, str] = field(default_factory=dict)
    figure: bool = False


def tensorboard(run_dir: Path, study_dir: Path) -> Held:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    accumulator.Reload()
    tags = accumulator.Tags()
    series = {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in tags["scalars"]}
    # TensorBoard groups runs by their folder below the --logdir (the study directory)
    relative = (run_dir / "tensorboard").relative_to(study_dir).as_posix()
    return Held(relative, study_dir.name, series, figure="fields" in tags["images"])


def mlflow_runs(study_dir: Path) -> dict[str, Any]:
    """{experiment name: [runs]} of the study's SQLite store."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{study_dir.resolve() / 'mlflow.db'}")
    return {e.name: client.search_runs([e.experiment_id]) for e in client.search_experiments()}


def mlflow(run_dir: Path, study_dir: Path) -> Held:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{study_dir.resolve() / 'mlflow.db'}")
    run_id = records.read_summary(run_dir)["trackers"]["mlflow"]["run_id"]
    run = client.get_run(run_id)
    series = {key: [(m.step, m.value) for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]
              for key in run.data.metrics}
    experiment = client.get_experiment(run.info.experiment_id).name
    figure = any(a.path == "fields.png" for a in client.list_artifacts(run_id))
    return Held(run.info.run_name, experiment, series, dict(run.data.params), figure)


def wandb(run_dir: Path, study_dir: Path) -> Held:
    from pinnbench.trackers.wandb import _records, offline_history

    run_id = records.read_summary(run_dir)["trackers"]["wandb"]["run_id"]
    series: dict[str, list[tuple[int, float]]] = {}
    for step, values in offline_history(run_dir, run_id):
        for key, value in values.items():
            if isinstance(value, (int, float)):
                series.setdefault(key, []).append((step, value))
    folders = sorted((run_dir / "wandb").glob(f"offline-run-*-{run_id}"))
    # a folder written by a killed process may hold only the file's header: W&B's service had not written yet
    run = next(r.run for folder in folders for r in _records(folder / f"run-{run_id}.wandb")
               if r.WhichOneof("record_type") == "run")
    params = {u.key: json.loads(u.value_json) for u in run.config.update if not u.key.startswith("_")}
    summary = {}
    for folder in folders:
        for record in _records(folder / f"run-{run_id}.wandb"):
            if record.WhichOneof("record_type") == "summary":
                summary.update({(u.key or "/".join(u.nested_key)): json.loads(u.value_json) for u in record.summary.update})
    series.update({k: [(-1, v)] for k, v in summary.items() if k.startswith("summary/")})
    figure = any(folder.glob("files/media/images/fields_*.png") for folder in folders)
    return Held(run.display_name, run.run_group, series, params, figure)


READERS = {"tensorboard": tensorboard, "mlflow": mlflow, "wandb": wandb}
TOLERANCE = {"tensorboard": 1e-6, "mlflow": 0.0, "wandb": 0.0}
"""TensorBoard keeps scalars in float32; MLflow and W&B keep the float64 values exactly."""
