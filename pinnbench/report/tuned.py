"""The report of tuning studies (``pinnbench report [RUNS...] --tuned SWEEP_DIR... --out OUT``).

A tuning sweep directory (``pinnbench tune``, :mod:`pinnbench.tune`) holds ``studies/`` (one Optuna
journal and its trials' run directories per study) and ``evaluation/`` (each study's selected
configuration trained on the evaluation seeds). Written into ``OUT/tuned/``:

* ``trials.csv``: every trial (setting, method, trial, point, state, parameters, objectives, test
  error, run directory);
* ``selected.csv``: each study's selected trial and whether the label-free objective picks the same;
* ``trial_errors.csv``: per method the median (and best) validation error over its trials, and how
  many diverged: how forgiving each method is;
* ``tuned_vs_untuned.csv``: on the evaluation seeds, every method tuned (and untuned, from RUNS)
  against tuned Adam: improvement of the mean, P(improve) and the Wilcoxon p over seed pairs, and
  each tuned method against its own untuned runs;
* ``tuned.md`` (the tables) and ``figures/tuning_robustness_<setting>.{png,pdf}`` (every trial's
  validation error against its learning rate, one colour per method).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from pinnbench import records
from pinnbench.errors import ConfigError
from pinnbench.report import stats
from pinnbench.report.collect import COMPLETED, DIVERGED, collect_runs
from pinnbench.report.style import method_colors, save
from pinnbench.report.tables import comparison_errors, paired, paired_errors, seed_errors, to_markdown
from pinnbench.tune import JOURNAL, OBJECTIVES, select

KEY = ["problem", "size", "n_losses", "budget", "budget_amount"]
"""The setting a study tunes (its method aside)."""
RUN_KEY = [*KEY, "variant"]
"""The setting of evaluation runs: with the overrides beyond the run name that tuning leaves alone."""
TUNED_BASELINE = "adam"
TUNED_KEYS = ("lr=", "final_lr=")
"""Overrides a tuned run adds to its setting's (with its method's and optimiser's options)."""


def find_studies(paths: Iterable[str | Path]) -> list[Path]:
    """Every study directory (one holding an Optuna journal) below ``paths``."""
    found = []
    for path in map(Path, paths):
        if not path.is_dir():
            raise ConfigError(f"--tuned {path}: no such directory.")
        found += sorted(p.parent for p in path.rglob(JOURNAL))
    if not found:
        raise ConfigError(f"--tuned {', '.join(map(str, paths))}: no study (no {JOURNAL}) below it.")
    return found


def _setting(study_dir: Path, trial_dirs: list[str]) -> dict:
    """The setting and method of a study, from the summary of one of its trials."""
    for name in trial_dirs:
        summary = records.read_summary(study_dir / name) if name else None
        if summary and summary.get("problem"):
            return {"problem": summary["problem"], "size": summary["size"], "n_losses": summary["n_losses"],
                    "budget": summary["budget"], "budget_amount": summary["budget_amount"], "method": summary["method"]}
    return {"problem": None, "size": None, "n_losses": None, "budget": None, "budget_amount": None,
            "method": study_dir.name.split("-n")[0]}


def read_study(study_dir: Path) -> tuple[dict, pd.DataFrame]:
    """(the study's recorded settings, one row per trial) from its journal (read only)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="tune", storage=JournalStorage(JournalFileBackend(str(study_dir / JOURNAL))))
    spec = study.user_attrs.get("spec", {})
    rows = [{"trial": t.number, "point": t.user_attrs.get("point"), "state": t.state.name.lower(), "value": t.value,
             **{k: t.user_attrs.get(k) for k in ("seed", "status", "val_rel_l2", "val_mse", "label_free", "test_mse",
                                                 "rel_l2", "iterations", "seconds")},
             **{f"param_{k}": v for k, v in t.params.items()}, "run_dir": t.user_attrs.get("run_dir")}
            for t in study.get_trials(deepcopy=False) if t.user_attrs.get("point") is not None]
    frame = pd.DataFrame(rows)
    setting = _setting(study_dir, list(frame["run_dir"].dropna()) if len(frame) else [])
    frame.insert(0, "study", str(study_dir))
    for i, (key, value) in enumerate(setting.items()):
        frame.insert(1 + i, key, value)
    frame["objective"] = spec.get("objective", "validation")
    frame["run_dir"] = [str(study_dir / d) if isinstance(d, str) else None for d in frame.get("run_dir", [])]
    return spec, frame


def trials_table(studies: list[Path]) -> pd.DataFrame:
    return pd.concat([read_study(s)[1] for s in studies], ignore_index=True)


def _pick(rows: pd.DataFrame, column: str, trials: int) -> dict | None:
    """:func:`pinnbench.tune.select` on ``column`` (missing or non-finite values count as +inf)."""
    values = pd.to_numeric(rows[column], errors="coerce").fillna(math.inf) if column in rows else math.inf
    picked = select(rows.assign(value=values).to_dict("records"), trials)
    return picked


def selected_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Per study: the trial selected on its objective, its parameters and errors, and the trial the
    label-free objective would select (whether it agrees, and its validation error)."""
    out = []
    for study, rows in trials.groupby("study", sort=False):
        n = int(rows["point"].max()) + 1
        objective = rows["objective"].iloc[0]
        chosen = _pick(rows, "value", n)
        label_free = _pick(rows, OBJECTIVES["label_free"], n)
        by_validation = _pick(rows, OBJECTIVES["validation"], n)
        row = {k: rows[k].iloc[0] for k in (*KEY, "method")}
        row.update(study=study, objective=objective, trials=n,
                   complete=int(rows["state"].eq("complete").sum()), selected=chosen is not None)
        if chosen is not None:
            row.update({k: chosen.get(k) for k in ("point", "value", "val_rel_l2", "label_free", "test_mse", "rel_l2")})
            row.update({k: v for k, v in chosen.items() if k.startswith("param_")})
            row["label_free_point"] = label_free["point"]
            row["label_free_agrees"] = label_free["point"] == by_validation["point"]
            row["label_free_pick_val_rel_l2"] = label_free.get("val_rel_l2")
        out.append(row)
    return pd.DataFrame(out)


def trial_errors_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Per study: the median, best and worst validation error over its complete trials (diverged: +inf)."""
    out = []
    for study, rows in trials.groupby("study", sort=False):
        done = rows[rows["state"].eq("complete")]
        errors = pd.to_numeric(done["val_rel_l2"], errors="coerce").where(done["status"].eq(COMPLETED), math.inf)
        test = pd.to_numeric(done["rel_l2"], errors="coerce").where(done["status"].eq(COMPLETED), math.inf)
        out.append({**{k: rows[k].iloc[0] for k in (*KEY, "method")}, "complete_trials": len(done),
                    "diverged_trials": int(done["status"].eq(DIVERGED).sum()),
                    "median_trial_val_rel_l2": float(np.median(errors)) if len(errors) else math.nan,
                    "best_trial_val_rel_l2": float(errors.min()) if len(errors) else math.nan,
                    "worst_trial_val_rel_l2": float(errors.max()) if len(errors) else math.nan,
                    "median_trial_test_rel_l2": float(np.median(test)) if len(test) else math.nan})
    return pd.DataFrame(out)


def evaluation_runs(sweep_dirs: Iterable[Path], metric: str) -> pd.DataFrame:
    """The evaluation runs of the tuning sweeps, labelled by their trainer (the summary's method)."""
    dirs = [d / "evaluation" for d in sweep_dirs if (d / "evaluation").is_dir()]
    if not dirs:
        return pd.DataFrame()
    runs = collect_runs(dirs, metric)
    runs["method"] = [str(m).split(" [")[0] for m in runs["method"]]
    runs["variant"] = [";".join(o for o in str(v).split(";") if o and not o.startswith(TUNED_KEYS))
                       for v in runs["variant"]]  # the setting's own overrides, as its untuned runs have them
    return runs


def _errors(runs: pd.DataFrame, metric: str) -> dict[tuple, pd.Series]:
    """Errors by seed (diverged: +inf) per (setting, method)."""
    runs = runs.assign(error=comparison_errors(runs, metric))
    return {key: seed_errors(group) for key, group in runs.groupby([*RUN_KEY, "method"], dropna=False)}


def versus_table(tuned: pd.DataFrame, untuned: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Every method tuned and untuned against tuned Adam of its setting, and tuned against untuned."""
    tuned_errors = _errors(tuned, metric) if len(tuned) else {}
    untuned_errors = _errors(untuned, metric) if len(untuned) else {}
    settings = sorted({k[:-1] for k in tuned_errors}, key=str)
    out = []
    for setting in settings:
        baseline = tuned_errors.get((*setting, TUNED_BASELINE))
        methods = sorted({k[-1] for k in tuned_errors if k[:-1] == setting}
                         | {k[-1] for k in untuned_errors if k[:-1] == setting})
        for method in methods:
            for kind, table in (("tuned", tuned_errors), ("untuned", untuned_errors)):
                errors = table.get((*setting, method))
                if errors is None or not len(errors):
                    continue
                finite = errors[np.isfinite(errors)]
                row = {**dict(zip(RUN_KEY, setting)), "method": method, "tuning": kind, "n_seeds": len(errors),
                       "n_diverged": int((~np.isfinite(errors)).sum()), "median": float(np.median(errors)),
                       "mean": float(finite.mean()) if len(finite) else math.nan}
                if baseline is not None and not (kind == "tuned" and method == TUNED_BASELINE):
                    a, m = paired_errors(baseline, errors)
                    if len(a):
                        pair = paired(a, m)
                        row.update(improvement_over_tuned_adam_percent=stats.improvement(
                            baseline[np.isfinite(baseline)].mean(), row["mean"]),
                            p_improve_over_tuned_adam=pair["p_better"], wilcoxon_p_vs_tuned_adam=pair["wilcoxon_p"],
                            median_log10_ratio_vs_tuned_adam=pair["median_log10_ratio"])
                own = untuned_errors.get((*setting, method))
                if kind == "tuned" and own is not None:
                    u, t = paired_errors(own, errors)
                    if len(u):
                        pair = paired(u, t)
                        row.update(p_tuned_better_than_untuned=pair["p_better"], wilcoxon_p_vs_untuned=pair["wilcoxon_p"])
                out.append(row)
    return pd.DataFrame(out)


def robustness_figures(trials: pd.DataFrame, out: Path) -> list[Path]:
    """Per setting: every complete trial's validation error against its learning rate, one colour
    per method (a diverged trial as a cross on the top edge)."""
    from matplotlib.figure import Figure

    files = []
    done = trials[trials["state"].eq("complete") & trials["param_lr"].notna()] if "param_lr" in trials else trials[:0]
    colors = method_colors(done["method"].dropna().unique())
    for setting, group in done.groupby(KEY, dropna=False):
        fig = Figure(figsize=(6.4, 4.4))
        ax = fig.subplots()
        errors = pd.to_numeric(group["val_rel_l2"], errors="coerce").where(group["status"].eq(COMPLETED), math.inf)
        top = errors[np.isfinite(errors)].max() * 1.5 if np.isfinite(errors).any() else 1.0
        for method, rows in group.assign(error=errors).groupby("method"):
            finite = rows[np.isfinite(rows["error"])]
            ax.scatter(finite["param_lr"], finite["error"], color=colors[method], label=method, s=22, alpha=0.85)
            bad = rows[~np.isfinite(rows["error"])]
            ax.scatter(bad["param_lr"], [top] * len(bad), color=colors[method], marker="x", s=30)
        ax.set(xscale="log", yscale="log", xlabel="peak learning rate", ylabel="final validation rel. L2",
               title=f"{setting[0]}-{setting[1]}, {setting[2]} losses: every trial (x: diverged)")
        ax.legend(fontsize=7, ncol=2)
        name = f"tuning_robustness_{setting[0]}-{setting[1]}_n{setting[2]}"
        files += save(fig, out, name)
    return files


def build_tuned_report(sweep_dirs: list[str], untuned: pd.DataFrame | None, out: str | Path, metric: str,
                       figures: bool = True) -> list[Path]:
    """Write the tuning report into ``out`` (see the module docstring); the paths written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    studies = find_studies(sweep_dirs)
    trials = trials_table(studies)
    tables = {"trials.csv": trials, "selected.csv": selected_table(trials),
              "trial_errors.csv": trial_errors_table(trials),
              "tuned_vs_untuned.csv": versus_table(evaluation_runs(map(Path, sweep_dirs), metric),
                                                   untuned if untuned is not None else pd.DataFrame(), metric)}
    files = []
    for name, table in tables.items():
        table.to_csv(out / name, index=False)
        files.append(out / name)
    text = [f"# Tuning report ({len(studies)} studies, error metric of the evaluation runs: {metric})"]
    for name, title in (("selected.csv", "Selected configurations"), ("trial_errors.csv", "Trial errors per method"),
                        ("tuned_vs_untuned.csv", "Tuned beside untuned, against tuned Adam")):
        if len(tables[name]):
            shown = tables[name].drop(columns=["study"], errors="ignore")
            text += [f"## {title}", to_markdown(shown.map(lambda v: f"{v:.3g}" if isinstance(v, float) else v))]
    (out / "tuned.md").write_text("\n\n".join(text) + "\n")
    files.append(out / "tuned.md")
    if figures:
        files += robustness_figures(trials, out / "figures")
    return files
