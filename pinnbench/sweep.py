"""Sweeps that can be stopped and relaunched: one guarded job per run directory, a lock, a report.

* :func:`run_job` wraps one training job. A run that already finished (``completed`` or
  ``diverged``) is skipped before anything is written; a run whose directory is locked by another
  process is skipped; otherwise the job takes the lock (``<run_dir>/.lock``), writes Hydra's
  ``.hydra/`` records (``hydra.output_subdir`` is null in ``configs/config.yaml``, so Hydra itself
  never rewrites them) and trains. In a sweep, an exception is recorded as a ``failed`` summary and
  the job returns, so the other jobs go on whatever the launcher.
* :class:`SweepReport`, a Hydra callback, lists the sweep's run directories before any job starts
  and, at the end, prints how many runs completed, diverged, failed or were skipped.
* :func:`check_launcher` turns ``hydra/launcher=joblib`` (or submitit) without the optional
  ``cluster`` extra into a clear error.
"""

from __future__ import annotations

import importlib.util
import logging
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from filelock import FileLock, Timeout
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from pinnbench import records
from pinnbench.errors import ConfigError

LOCK = ".lock"
HYDRA_DIR = ".hydra"
JOB_LOG = "pinnbench.log"
"""The job log Hydra writes in every run directory (``hydra.job.name`` is ``pinnbench``)."""

COMPLETED, DIVERGED, FAILED = "completed", "diverged", "failed"
FINISHED = (COMPLETED, DIVERGED)
"""Statuses a relaunch leaves alone; a ``failed`` run is tried again."""

log = logging.getLogger(__name__)


def finished(run_dir: Path) -> dict[str, Any] | None:
    """The summary of a run that needs no more work, else None (a summary that cannot be read
    raises :class:`~pinnbench.records.CorruptRecord`, naming it)."""
    summary = records.read_summary(run_dir)
    return summary if summary is not None and summary.get("status") in FINISHED else None


def check_recorded_config(run_dir: Path, summary: dict[str, Any] | None,
                          config_now: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """Refuse (a :class:`ConfigError`) a finished run or a checkpoint whose recorded configuration is
    not ``config_now`` = (resolved configuration, schema defaults), before anything in ``run_dir``
    is written."""
    from pinnbench.train import check_same_config

    if summary is not None:
        check_same_config(run_dir, summary.get("config"), config_now[0], records.SUMMARY, config_now[1])
    elif (run_dir / records.CHECKPOINT).exists():
        recorded = records.load_checkpoint(run_dir / records.CHECKPOINT).get("config")
        check_same_config(run_dir, recorded, config_now[0], records.CHECKPOINT, config_now[1])


def _skip(run_dir: Path, summary: dict[str, Any]) -> dict[str, Any]:
    mse = summary.get("test_mse")
    print(f"{run_dir}: already {summary['status']} ({summary.get('iterations')} iterations, test MSE "
          f"{mse if mse is None else format(mse, '.3e')}); nothing to do.", flush=True)
    return {**summary, "skipped": True}


def save_hydra_config(run_dir: Path, cfg: DictConfig) -> None:
    """Write what Hydra writes in ``.hydra/`` (config, hydra config, overrides), atomically."""
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.instance().cfg
    contents = {"config.yaml": cfg, "hydra.yaml": hydra_cfg, "overrides.yaml": hydra_cfg.hydra.overrides.task}
    for name, node in contents.items():
        with records.atomic_path(run_dir / HYDRA_DIR / name) as tmp:
            tmp.write_text(OmegaConf.to_yaml(node))


def _failed_summary(cfg: DictConfig, exc: Exception) -> dict[str, Any]:
    """A ``failed`` summary with the setting (as far as the config tells it) and the error."""
    def pick(key: str) -> Any:
        try:
            return OmegaConf.select(cfg, key)
        except Exception:  # an unresolvable interpolation
            return None

    return {"status": FAILED, "error": f"{type(exc).__name__}: {exc}", "problem": pick("problem.name"),
            "method": pick("method.name"), "n_losses": pick("n_losses"), "seed": pick("seed"),
            "size": pick("problem.size"), "budget": pick("budget.kind"), "device": pick("device")}


def _refuse(run_dir: Path, exc: ConfigError, catch: bool) -> dict[str, Any]:
    """A run directory this job must not touch (corrupt records, another configuration)."""
    if not catch:
        raise exc
    log.error("%s: refused: %s", run_dir, exc)
    return {"status": "refused", "error": str(exc), "skipped": True}


def run_job(cfg: DictConfig, run_dir: Path, work: Callable[[], dict[str, Any]], *, catch: bool,
            config_now: Callable[[], tuple[dict[str, Any], dict[str, Any]]] | None = None) -> dict[str, Any]:
    """Run ``work()`` (train) in ``run_dir`` unless it finished or another process holds it.

    ``config_now()``, the run's resolved configuration and the schema defaults (see
    :func:`~pinnbench.train.schema_defaults`), is compared with the one recorded by a
    finished run or a checkpoint: a difference refuses the job and leaves the directory untouched.
    With ``catch`` (in a sweep) an exception becomes a ``failed`` summary and a returned result;
    otherwise it is recorded, then raised.
    """
    try:
        summary = finished(run_dir)
        if config_now is not None and (summary is not None or (run_dir / records.CHECKPOINT).exists()):
            check_recorded_config(run_dir, summary, config_now())
    except ConfigError as exc:
        return _refuse(run_dir, exc, catch)
    if summary is not None:
        return _skip(run_dir, summary)
    lock = FileLock(run_dir / LOCK)
    try:
        lock.acquire(blocking=False)
    except Timeout:
        print(f"{run_dir}: locked by another process (a sweep training this run now); skipped.", flush=True)
        return {"status": "locked", "skipped": True}
    try:
        try:
            summary = finished(run_dir)  # it may have finished while this job waited to start
        except ConfigError as exc:
            return _refuse(run_dir, exc, catch)
        if summary is not None:
            return _skip(run_dir, summary)
        save_hydra_config(run_dir, cfg)
        try:
            return work()
        except Exception as exc:
            failure = _failed_summary(cfg, exc)
            records.write_json(run_dir / records.SUMMARY, failure)
            if not catch:
                raise
            if isinstance(exc, ConfigError):
                log.error("%s: failed: %s", run_dir, exc)
            else:
                log.error("%s: failed: %s\n%s", run_dir, failure["error"], traceback.format_exc())
            return failure
    finally:
        lock.release()


# --- the missing-extra check -------------------------------------------------------------------

LAUNCHER_MODULES = {
    "joblib": ("hydra_plugins.hydra_joblib_launcher", "joblib"),
    "submitit_local": ("hydra_plugins.hydra_submitit_launcher", "submitit"),
    "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "submitit"),
}
"""The maintained Hydra launcher plugins we support, and the modules each needs."""


def _launcher_modules(name: str, launcher_dir: Path) -> tuple[str, ...]:
    """Modules needed by launcher ``name``: a plugin's own, or those of the plugin a YAML of ours
    in ``configs/hydra/launcher/`` extends through its defaults list."""
    if name in LAUNCHER_MODULES:
        return LAUNCHER_MODULES[name]
    path = launcher_dir / f"{name}.yaml"
    if not path.is_file():
        return ()
    defaults = OmegaConf.load(path).get("defaults") or []
    return tuple(m for d in defaults if isinstance(d, str) for m in _launcher_modules(d, launcher_dir))


def check_launcher(overrides: list[str], config_dir: Path) -> None:
    """Raise :class:`ConfigError` naming the ``cluster`` extra when ``hydra/launcher=NAME`` asks for
    a plugin that is not installed (before Hydra's own, less helpful, error)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    for override in OverridesParser.create().parse_overrides(overrides):
        if override.key_or_group != "hydra/launcher":
            continue
        name = str(override.value())
        missing = [m for m in _launcher_modules(name, config_dir / "hydra" / "launcher")
                   if importlib.util.find_spec(m) is None]
        if missing:
            raise ConfigError(f"hydra/launcher={name} needs the optional launcher plugins, which are not "
                              f"installed (no module {missing[0]}); install them with "
                              f"pip install \"pinnbench[cluster]\".")


# --- the end-of-sweep report -------------------------------------------------------------------

@dataclass
class Sweep:
    """The run directories of one launch and their summaries' state when it started."""

    sweep_dir: Path
    run_dirs: list[Path]
    before: dict[Path, int | None]
    launcher_logs: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    reported: bool = False

    @property
    def ok(self) -> bool:
        """True when no run of the sweep failed or diverged (now or in an earlier launch)."""
        return not (self.counts.get(FAILED) or self.counts.get(DIVERGED) or self.counts.get("skipped " + DIVERGED))


CURRENT: Sweep | None = None
"""The sweep this process launched (set by :class:`SweepReport` before its jobs start)."""


def _summary_mtime(run_dir: Path) -> int | None:
    path = run_dir / records.SUMMARY
    return path.stat().st_mtime_ns if path.exists() else None


def sweep_run_dirs(config: DictConfig, config_loader: Any) -> list[Path]:
    """The run directory of every job of the multirun ``config``, as Hydra's basic sweeper and
    its launchers compute them (the sweeper's job list, then each job's ``hydra.sweep.subdir``)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = [f"{k}={v}" for k, v in (OmegaConf.select(config, "hydra.sweeper.params") or {}).items()]
    arguments = params + list(OmegaConf.to_container(config.hydra.overrides.task))
    parsed = OverridesParser.create(config_loader=config_loader).parse_overrides(arguments)
    dirs: list[Path] = []
    for batch in BasicSweeper.split_arguments(parsed, None):
        for job in batch:
            job_cfg = config_loader.load_sweep_config(config, list(job))
            run_dir = Path(str(job_cfg.hydra.sweep.dir)) / str(job_cfg.hydra.sweep.subdir)
            if run_dir not in dirs:
                dirs.append(run_dir)
    return dirs


def _is_locked(run_dir: Path) -> bool:
    if not (run_dir / LOCK).exists():
        return False
    lock = FileLock(run_dir / LOCK)
    try:
        lock.acquire(blocking=False)
    except Timeout:
        return True
    lock.release()
    return False


def outcome(sweep: Sweep, run_dir: Path) -> tuple[str, str]:
    """(status of ``run_dir`` in this launch, a note): ``completed``, ``diverged``, ``failed``, or
    ``skipped <status>`` for a run that finished before the launch or is being trained elsewhere."""
    try:
        summary = records.read_summary(run_dir)
    except ValueError:
        summary = {"status": FAILED, "error": f"unreadable {records.SUMMARY}"}
    if summary is None:
        if not run_dir.is_dir():
            return FAILED, "never started (the launcher did not run it)"
        if _is_locked(run_dir):
            return "skipped running", "locked: another process is training it"
        return FAILED, "no summary: the job was killed before it finished (a relaunch resumes it)"
    status = summary.get("status", FAILED)
    if sweep.before.get(run_dir) is not None and sweep.before[run_dir] == _summary_mtime(run_dir) \
            and status in FINISHED:
        return f"skipped {status}", "finished before this launch"
    return status, summary.get("error", "")


def report(sweep: Sweep) -> str:
    """Count the outcomes, remember them in ``sweep.counts`` and return the printed text."""
    rows = [(run_dir, *outcome(sweep, run_dir)) for run_dir in sweep.run_dirs]
    counts: dict[str, int] = {}
    for _, status, _ in rows:
        counts[status] = counts.get(status, 0) + 1
    sweep.counts, sweep.reported = counts, True
    skipped = {s.split(" ", 1)[1]: n for s, n in counts.items() if s.startswith("skipped ")}
    lines = [f"sweep of {len(rows)} runs in {sweep.sweep_dir}: {counts.get(COMPLETED, 0)} completed, "
             f"{counts.get(DIVERGED, 0)} diverged, {counts.get(FAILED, 0)} failed, "
             f"{sum(skipped.values())} skipped"
             + (" (" + ", ".join(f"{n} already {s}" if s != "running" else f"{n} running elsewhere"
                                 for s, n in sorted(skipped.items())) + ")" if skipped else "")]
    for run_dir, status, note in rows:
        if status == FAILED:
            where = f"log: {run_dir / JOB_LOG}" if (run_dir / JOB_LOG).exists() else "no log"
            lines.append(f"  {status:<16} {run_dir}  {note}  ({where})")
        elif status in (DIVERGED, "skipped " + DIVERGED):
            lines.append(f"  {status:<16} {run_dir}  (see its history.csv and summary.json)")
    if sweep.launcher_logs and (counts.get(FAILED) or counts.get(DIVERGED)):
        folder = sweep.launcher_logs.replace("%j", "<job id>")
        lines.append(f"  stdout and stderr of every job: {folder}")
    text = "\n".join(lines)
    print(text, flush=True)
    return text


class SweepReport(Callback):
    """Hydra callback (``hydra.callbacks`` in ``configs/config.yaml``): records the sweep's run
    directories when a multirun starts and prints the report when it ends."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global CURRENT
        from hydra.core.global_hydra import GlobalHydra

        CURRENT = None
        if OmegaConf.select(config, "hydra.sweeper._target_") != \
                "hydra._internal.core_plugins.basic_sweeper.BasicSweeper":
            return  # another sweeper chooses its jobs as it goes: no list to report on
        try:
            run_dirs = sweep_run_dirs(config, GlobalHydra.instance().config_loader())
        except Exception:  # a job that cannot be composed: the sweeper reports it in its own words
            return
        CURRENT = Sweep(Path(str(config.hydra.sweep.dir)), run_dirs, {d: _summary_mtime(d) for d in run_dirs},
                        launcher_logs=OmegaConf.select(config, "hydra.launcher.submitit_folder", default=None))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if CURRENT is not None and not CURRENT.reported:
            report(CURRENT)
