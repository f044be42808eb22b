"""``pinnbench tune``: every method of a setting tuned with the same budget, selected on validation.

A **study** is one setting (problem, size, grouping, budget) and one trainer (method, and optimiser
where it varies). Its directory holds Optuna's journal file (``journal.log``; no database server)
and one ordinary run directory per trial (``trial-07/``: records, checkpoint, resume). Trial k of a
study is the k-th point of a design generated up front (:mod:`pinnbench.search`), trained with seed
``tune.trial_seed + k`` (evaluation seeds are 0-9) and the k-th learning rate, the same for every
trainer. A trial's value is its final validation error (``tune.objective=validation``) or the
label-free objective (``label_free``); a diverged trial is a complete trial of value +inf. The
selection (:func:`select`) reads that value only, never the test error.

Workers (``tune.workers``, or more processes started on the same study, on any machine sharing the
directory) take points one at a time under the study's lock; a point being trained is held by a
file lock of its worker, which the system releases when the worker dies, so a relaunch marks the
trial it left running failed and trains its point again (resuming from the trial's checkpoint).
A study ends with exactly ``tune.trials`` complete trials. With ``tune.evaluate=true`` the selected
configuration then trains on ``tune.eval_seeds`` into ``<dir>/evaluation/`` (ordinary run names).
"""

from __future__ import annotations

import contextlib
import csv
import math
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from filelock import FileLock, Timeout
from omegaconf import DictConfig, OmegaConf, open_dict

from pinnbench import records
from pinnbench.errors import ConfigError
from pinnbench.search import Dimension, design, space
from pinnbench.settings import typed

JOURNAL, STUDY_LOCK, SELECTED, TRIALS = "journal.log", "study.lock", "selected.json", "trials.csv"
SAMPLERS, OBJECTIVES = ("qmc", "tpe"), {"validation": "val_rel_l2", "label_free": "label_free"}
SPEC_KEYS = ("overrides", "sampler", "objective", "seed", "trial_seed", "space", "final_lr_ratio")
"""What a study directory is made with; a relaunch with another value of any of these is refused
(``tune.trials`` may grow: the first points of a longer design are the same)."""


@dataclass
class TuneConfig:
    """``tune:`` (``configs/tune.yaml``)."""

    trainers: list = field(default_factory=list)
    trials: int = 16
    sampler: str = "qmc"
    objective: str = "validation"
    seed: int = 0
    trial_seed: int = 1000
    workers: int = 1
    evaluate: bool = False
    eval_seeds: list = field(default_factory=lambda: list(range(10)))
    lr: dict = field(default_factory=lambda: {"low": 1e-4, "high": 1e-1, "scale": "log"})
    final_lr_ratio: float = 0.1

    def __post_init__(self) -> None:
        if self.trials < 1:
            raise ConfigError(f"tune.trials={self.trials} must be a positive number of trials.")
        if self.workers < 1:
            raise ConfigError(f"tune.workers={self.workers} must be a positive number of processes.")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"tune.sampler={self.sampler!r} is not a sampler; allowed: {', '.join(SAMPLERS)}.")
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"tune.objective={self.objective!r} is not an objective; allowed: {', '.join(OBJECTIVES)}.")
        if not 0 < self.final_lr_ratio <= 1:
            raise ConfigError(f"tune.final_lr_ratio={self.final_lr_ratio} must be in (0, 1].")
        clash = sorted(set(self.eval_seeds) & set(range(self.trial_seed, self.trial_seed + self.trials)))
        if clash:
            raise ConfigError(f"tune.eval_seeds and the trials' seeds (tune.trial_seed={self.trial_seed} + k) share "
                              f"{clash[0]}: selection and evaluation must use disjoint seeds.")
        for label in self.trainers:
            if not re.fullmatch(r"[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)?", str(label)):
                raise ConfigError(f"tune.trainers: {label!r} is not METHOD or METHOD+OPTIMIZER (e.g. adam+soap).")


# ----- studies and their configurations -------------------------------------------------------
@dataclass
class Study:
    """One study: its directory, the overrides of its setting and trainer, its space and settings."""

    dir: Path
    label: str
    overrides: list[str]
    dims: list[Dimension]
    tune: TuneConfig
    sweep_dir: Path

    @property
    def objective_key(self) -> str:
        return OBJECTIVES[self.tune.objective]

    def spec(self) -> dict[str, Any]:
        return {"overrides": sorted(self.overrides), "sampler": self.tune.sampler, "objective": self.tune.objective,
                "seed": self.tune.seed, "trial_seed": self.tune.trial_seed, "final_lr_ratio": self.tune.final_lr_ratio,
                "space": [d.describe() for d in self.dims]}

    def point_overrides(self, params: dict[str, Any]) -> list[str]:
        """Overrides of a design point: the learning rate, its final value, the method's and optimiser's options."""
        lr = params["lr"]
        extra = [f"{k}={v}" for k, v in sorted(params.items()) if k != "lr"]
        final_lr = float(format(self.tune.final_lr_ratio * lr, ".6g"))
        return [f"lr={lr!r}", f"final_lr={final_lr!r}", *extra]


class Composer:
    """Hydra's config loader over ``configs/``, kept open while studies run."""

    def __init__(self, overrides: list[str]) -> None:
        from hydra import initialize_config_dir
        from hydra.core.global_hydra import GlobalHydra
        from hydra.types import RunMode

        from pinnbench.cli import _register, config_dir

        _register()
        GlobalHydra.instance().clear()
        self._context = initialize_config_dir(config_dir=str(config_dir()), version_base="1.3")
        self._context.__enter__()
        self.loader = GlobalHydra.instance().config_loader()
        self.master = self.loader.load_configuration("config", overrides, run_mode=RunMode.MULTIRUN)

    def close(self) -> None:
        from hydra.core.global_hydra import GlobalHydra

        self._context.__exit__(None, None, None)
        GlobalHydra.instance().clear()

    def jobs(self, overrides: list[str]) -> list[list[str]]:
        """The job override lists of the multirun (the experiment's sweeper params, then the command line's)."""
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.override_parser.overrides_parser import OverridesParser

        params = [f"{k}={v}" for k, v in (OmegaConf.select(self.master, "hydra.sweeper.params") or {}).items()]
        parsed = OverridesParser.create(config_loader=self.loader).parse_overrides(params + overrides)
        return [list(job) for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]

    def compose(self, overrides: list[str]) -> DictConfig:
        """One job's configuration, with its ``hydra`` node (run names resolve against it)."""
        return self.loader.load_sweep_config(self.master, list(overrides))


def _trainer_overrides(label: str) -> list[str]:
    """``method=M optimizer=O`` of a trainer label ``M[+O]``; an unknown M or O is a clear error."""
    from pinnbench.cli import config_dir

    method, _, optimizer = label.partition("+")
    for group, name in (("method", method), ("optimizer", optimizer or "adam")):
        offered = sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))
        if name not in offered:
            raise ConfigError(f"tune.trainers: {label!r} names {group} {name!r}, not one of configs/{group}/; "
                              f"allowed: {', '.join(offered)}.")
    return [f"method={method}", f"optimizer={optimizer or 'adam'}"]


def _study_overrides(job: list[str]) -> list[str]:
    """A job's overrides without pinnbench tune's own and Hydra's (which do not change what is trained)."""
    return [o for o in job if not o.lstrip("+~").startswith(("tune.", "tune=", "hydra", "seed="))]


def plan(composer: Composer, overrides: list[str]) -> list[Study]:
    """Every study of the command line: one per job of the sweep and trainer of ``tune.trainers``."""
    studies = []
    for job in composer.jobs(overrides):
        cfg = composer.compose(job)
        settings = typed(TuneConfig, OmegaConf.to_container(cfg.tune, resolve=True), prefix="tune.")
        if cfg.budget.kind == "walltime" and not isinstance(cfg.budget.seconds, (int, float)):
            raise ConfigError(f"budget.seconds={cfg.budget.seconds!r}: tuning at equal time needs a number of "
                              f"seconds (measure Adam's time first).")
        for label in settings.trainers or [None]:
            these = _study_overrides(job) + (_trainer_overrides(label) if label else [])
            study_cfg = composer.compose(these + ["seed=0"])
            name = re.sub(r"-seed0(?=-|$)", "", str(study_cfg.hydra.sweep.subdir))
            sweep_dir = Path(str(study_cfg.hydra.sweep.dir))
            from pinnbench.train import prepare

            with open_dict(study_cfg):
                del study_cfg["hydra"]
            prepare(study_cfg)  # the whole configuration checked before any trial
            dims = space(study_cfg, settings.lr)
            studies.append(Study(sweep_dir / "studies" / name, name.split("/")[-1].split("-n")[0], these, dims,
                                 settings, sweep_dir))
    return studies


# ----- one run ---------------------------------------------------------------------------------
def run_once(composer: Composer, overrides: list[str], run_dir: Path) -> dict[str, Any]:
    """Train (or resume, or skip) the run of ``overrides`` in ``run_dir``, as ``pinnbench run`` would."""
    from hydra.core.hydra_config import HydraConfig

    from pinnbench.sweep import run_job
    from pinnbench.train import prepare, resolved_config, schema_defaults, train

    cfg = composer.compose(overrides)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    setup = prepare(cfg)
    return run_job(cfg, run_dir, lambda: train(setup, run_dir), catch=True,
                   config_now=lambda: (resolved_config(setup), schema_defaults(setup)))


def trial_value(summary: dict[str, Any], key: str) -> float | None:
    """A trial's objective: the summary's ``key`` (+inf when not finite or when the run diverged);
    None when the run failed (no value: the trial is failed)."""
    if summary.get("status") == "diverged":
        return math.inf
    if summary.get("status") != "completed":
        return None
    value = summary.get(key)
    return float(value) if value is not None and math.isfinite(value) else math.inf


RECORDED = ("status", "val_rel_l2", "val_mse", "label_free", "test_mse", "rel_l2", "iterations", "seconds")


# ----- the Optuna study -------------------------------------------------------------------------
def open_study(study: Study) -> Any:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.dir.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(study.dir / JOURNAL)))
    sampler = optuna.samplers.TPESampler(seed=study.tune.seed, n_startup_trials=max(2, study.tune.trials // 4)) \
        if study.tune.sampler == "tpe" else optuna.samplers.RandomSampler(seed=study.tune.seed)  # qmc: all enqueued
    handle = optuna.create_study(study_name="tune", storage=storage, direction="minimize", sampler=sampler,
                                 load_if_exists=True)
    recorded = handle.user_attrs.get("spec")
    if recorded is None:
        handle.set_user_attr("spec", study.spec())
    elif recorded != study.spec():
        changed = [k for k in SPEC_KEYS if recorded.get(k) != study.spec().get(k)]
        raise ConfigError(f"{study.dir} is a study made with other settings ({', '.join(changed)}: "
                          f"{recorded.get(changed[0])!r}, now {study.spec().get(changed[0])!r}); "
                          f"use another hydra.sweep.dir or the same settings.")
    return handle


def _point_lock(study: Study, point: int) -> FileLock:
    return FileLock(study.dir / "locks" / f"point-{point:03d}.lock")


def _held(lock: FileLock) -> bool:
    try:
        lock.acquire(blocking=False)
    except Timeout:
        return True
    lock.release()
    return False


def reconcile(study: Study, handle: Any) -> dict[str, set[int]]:
    """Under the study lock: a running trial whose worker is gone (its point lock is free) is marked
    failed, and every point of the design that no trial completed, runs or waits for is queued.
    Returns the points by state (``complete``, ``running``, ``waiting``)."""
    from optuna.trial import TrialState

    (study.dir / "locks").mkdir(exist_ok=True)
    states: dict[str, set[int]] = {"complete": set(), "running": set(), "waiting": set()}
    failed: dict[int, dict[str, Any]] = {}
    for trial in handle.get_trials(deepcopy=False):
        point = trial.user_attrs.get("point")
        if trial.state == TrialState.RUNNING and (point is None or not _held(_point_lock(study, point))):
            print(f"{study.dir}: trial {trial.number} (point {point}) was left running by a worker that stopped; "
                  f"marked failed, its point is trained again.", flush=True)
            handle.tell(trial.number, state=TrialState.FAIL)
            trial = handle._storage.get_trial(trial._trial_id)
        if point is None:
            continue
        if trial.state == TrialState.COMPLETE:
            states["complete"].add(point)
        elif trial.state == TrialState.RUNNING:
            states["running"].add(point)
        elif trial.state == TrialState.WAITING:
            states["waiting"].add(point)
        elif trial.params:
            failed[point] = trial.params
    taken = set().union(*states.values())
    points = design(study.dims, study.tune.trials, study.tune.seed) if study.tune.sampler == "qmc" else []
    for k in range(study.tune.trials):
        if k in taken or (study.tune.sampler == "tpe" and k not in failed):
            continue
        handle.enqueue_trial(failed.get(k) or points[k], user_attrs={"point": k})
        states["waiting"].add(k)
    return states


def suggest(trial: Any, dims: Sequence[Dimension]) -> dict[str, Any]:
    """The trial's value of every dimension (an enqueued point's, or the sampler's)."""
    from optuna.distributions import CategoricalDistribution

    params = {}
    for d in dims:
        dist = d.distribution()
        params[d.name] = trial.suggest_categorical(d.name, dist.choices) if isinstance(dist, CategoricalDistribution) \
            else trial.suggest_float(d.name, dist.low, dist.high, log=dist.log)
    return params


def next_trial(study: Study, handle: Any) -> tuple[Any, int, dict[str, Any], FileLock] | None:
    """Under the study lock, the next trial for this worker (its point held), or None when every
    point is complete or being trained elsewhere."""
    with FileLock(study.dir / STUDY_LOCK):
        states = reconcile(study, handle)
        free = [k for k in range(study.tune.trials) if k not in set().union(*states.values())]
        if len(states["complete"]) >= study.tune.trials or not (states["waiting"] or free):
            return None
        trial = handle.ask()
        point = trial.user_attrs.get("point")
        if point is None:
            point = free[0]
            trial.set_user_attr("point", point)
        lock = _point_lock(study, point)
        lock.acquire(blocking=False)
        params = suggest(trial, study.dims)
        return trial, point, params, lock


class TrialFailed(Exception):
    """A trial that raised or was refused (not a diverged one: that is a trial of value +inf)."""


def run_trial(composer: Composer, study: Study, handle: Any) -> bool:
    """Take one trial, train it and record its value; False when there is nothing left to take.
    A trial that fails (an error, a refused run directory) is marked failed and raises
    :class:`TrialFailed`: a relaunch trains its point again."""
    from optuna.trial import TrialState

    taken = next_trial(study, handle)
    if taken is None:
        return False
    trial, point, params, lock = taken
    try:
        seed = study.tune.trial_seed + point
        overrides = study.overrides + study.point_overrides(params) + [f"seed={seed}"]
        run_dir = study.dir / f"trial-{point:03d}"
        trial.set_user_attr("run_dir", run_dir.name)
        trial.set_user_attr("seed", seed)
        summary = run_once(composer, overrides, run_dir)
        for key in RECORDED:
            if summary.get(key) is not None:
                trial.set_user_attr(key, summary[key])
        value = trial_value(summary, study.objective_key)
        if value is None:
            trial.set_user_attr("error", str(summary.get("error", "")))
            handle.tell(trial, state=TrialState.FAIL)
            raise TrialFailed(f"{run_dir}: trial {summary.get('status')}: {summary.get('error', '')} "
                              f"(fix it, then relaunch: the point is trained again)")
        handle.tell(trial, value)
        write_trials(study, trial_rows(study, handle))
        print(f"{study.dir.name}: point {point} ({', '.join(f'{k}={v}' for k, v in params.items())}): "
              f"{summary['status']}, {study.objective_key}={value:.3e}", flush=True)
    finally:
        lock.release()
    return True


# ----- selection and evaluation -----------------------------------------------------------------
def trial_rows(study: Study, handle: Any) -> list[dict[str, Any]]:
    """One row per trial: its point, state, value, parameters and recorded results."""
    rows = []
    for t in handle.get_trials(deepcopy=False):
        if t.user_attrs.get("point") is None:
            continue
        rows.append({"trial": t.number, "point": t.user_attrs["point"], "state": t.state.name.lower(),
                     "value": t.value, **{k: t.user_attrs.get(k) for k in ("seed", *RECORDED)},
                     **{f"param_{k}": v for k, v in t.params.items()}, "run_dir": t.user_attrs.get("run_dir")})
    return rows


def select(rows: Sequence[dict[str, Any]], trials: int) -> dict[str, Any] | None:
    """The complete trial with the smallest value among points 0..trials-1 (ties: the lower point),
    or None before every point is complete. Reads ``value`` (the validation or label-free
    objective) only, never a test error."""
    complete = {r["point"]: r for r in rows if r["state"] == "complete" and r["point"] < trials}
    if len(complete) < trials:
        return None
    return min(complete.values(), key=lambda r: (r["value"], r["point"]))


def write_trials(study: Study, rows: list[dict[str, Any]]) -> None:
    """``trials.csv`` in the study directory (all trials, all their records)."""
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with records.atomic_path(study.dir / TRIALS) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)


def evaluate(composer: Composer, study: Study, chosen: dict[str, Any]) -> list[dict[str, Any]]:
    """Train the selected configuration on every evaluation seed (``<sweep dir>/evaluation/<run name>``)."""
    params = {k[len("param_"):]: v for k, v in chosen.items() if k.startswith("param_")}
    overrides = study.overrides + study.point_overrides(params)
    summaries = []
    for seed in study.tune.eval_seeds:
        job = overrides + [f"seed={seed}"]
        run_dir = study.sweep_dir / "evaluation" / str(composer.compose(job).hydra.sweep.subdir)
        summaries.append(run_once(composer, job, run_dir))
        print(f"{study.dir.name}: evaluation seed {seed}: {summaries[-1]['status']} in {run_dir}", flush=True)
    return summaries


def tune_study(composer: Composer, study: Study) -> str:
    """Work on one study until no point is left to take; select and evaluate once it is complete.
    Returns its state: ``complete`` or ``in progress`` (points being trained elsewhere)."""
    handle = open_study(study)
    try:
        while run_trial(composer, study, handle):
            pass
    except TrialFailed as exc:
        print(f"error: {exc}; this study stops here, the others go on.", file=sys.stderr, flush=True)
        write_trials(study, trial_rows(study, handle))
        return "failed"
    rows = trial_rows(study, handle)
    write_trials(study, rows)
    chosen = select(rows, study.tune.trials)
    if chosen is None:
        return "in progress"
    params = {k[len("param_"):]: v for k, v in chosen.items() if k.startswith("param_")}
    records.write_json(study.dir / SELECTED, {
        "study": study.dir.name, "objective": study.tune.objective, "value": chosen["value"], "point": chosen["point"],
        "trial": chosen["trial"], "params": params, "overrides": study.point_overrides(params),
        "command": "pinnbench run " + " ".join(study.overrides + study.point_overrides(params)) + " seed=S"})
    print(f"{study.dir}: {study.tune.trials} trials complete; selected point {chosen['point']} "
          f"({study.objective_key}={chosen['value']:.3e}): {' '.join(study.point_overrides(params))}", flush=True)
    if study.tune.evaluate:
        bad = [s for s in evaluate(composer, study, chosen) if s["status"] in ("failed", "refused")]
        if bad:
            print(f"error: {study.dir}: {len(bad)} evaluation runs {bad[0]['status']}: {bad[0].get('error', '')}",
                  file=sys.stderr, flush=True)
            return "failed"
    return "complete"


@contextlib.contextmanager
def composing(overrides: list[str]) -> Iterator[Composer]:
    composer = Composer(overrides)
    try:
        yield composer
    finally:
        composer.close()


def tune(overrides: list[str]) -> int:
    """Run (or join, or resume) every study of the command line; the exit status."""
    from pinnbench.cli import _register, check_overrides

    _register()
    check_overrides([o for o in overrides if not o.lstrip("+~").startswith(("tune.", "tune="))])
    with composing(overrides) as composer:
        studies = plan(composer, overrides)
        workers = studies[0].tune.workers if studies else 1
        if workers > 1:  # the same command in W processes, each a worker of every study
            mine = [o for o in overrides if not o.startswith("tune.workers=")]
            command = [sys.executable, "-m", "pinnbench", "tune", *mine, "tune.workers=1"]
            processes = [subprocess.Popen(command) for _ in range(workers)]
            return max(p.wait() for p in processes)
        print(f"{len(studies)} studies of {studies[0].tune.trials if studies else 0} trials: "
              + ", ".join(str(s.dir) for s in studies), flush=True)
        states = [tune_study(composer, study) for study in studies]
    pending, failed = states.count("in progress"), states.count("failed")
    print(f"tune: {states.count('complete')} of {len(studies)} studies complete"
          + (f", {pending} with trials still being trained by other workers" if pending else "")
          + (f", {failed} failed (see the errors above; a relaunch retries them)" if failed else "") + ".", flush=True)
    return 1 if failed else 0
