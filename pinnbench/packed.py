"""Packed study records: every run of a study in a few columnar files that only grow.

A *packed directory* (a study's ``runs/``) holds parts, each written once and never rewritten::

    part-0000-summaries.parquet    one row per run: its path below the directory, summary.json,
                                   .hydra/config.yaml and .hydra/overrides.yaml as text (verbatim),
                                   the history's columns and row counts, whether its weights are kept
    part-0000-histories.parquet    every run's history.csv rows, a ``run`` column first (zstd;
                                   a column is float32 where every value of it round-trips exactly)
    part-0000-weights.safetensors  the trained weights of the runs chosen (``<run>/<parameter>``)

Packing more runs into the directory adds the next part (``part-0001-…``): earlier files are never
touched, so a study committed over several days adds only its new runs to a repository's history.
A reader takes the union of the parts; a run found in two parts, or both packed and as a run
directory, is an error, except a run packed as ``failed`` and packed again in a later part (a sweep
tried it again): the later record replaces it. Runs are addressed as if they were directories,
``<packed dir>/<run>``, the path their run directory had, so reports name them as before
(:func:`locate`).

History rows can be thinned, two explicit options (:func:`thin_rows`): ``thin`` keeps at most that
many of a run's rows that record neither a test error nor a diagnostic (losses, loss weights,
learning rate), evenly spaced; ``thin_evaluations`` keeps at most that many of its rows with a test
error besides those where an error reaches a new low. Rows with a gradient diagnostic, the first
row, each column's last value, every row where a text column (the training phase) changes are always
kept (:func:`required_rows`), so every report table is unchanged: final values, conflict fractions,
final loss weights, and every time to target, since the first row at which an error reaches a
target is a row where it reaches a new low. Thinned histories store the learning rate as float32
(:data:`THINNED_FLOAT32`).
"""

from __future__ import annotations

import fnmatch
import functools
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from pinnbench import records
from pinnbench.errors import ConfigError

FORMAT = 1
PART_FILE = re.compile(r"^part-(\d{4})-(summaries|histories)\.parquet$|^part-(\d{4})-weights\.safetensors$")
RUN = "run"
THINNED_FLOAT32 = ("lr",)
"""Columns stored as float32 when histories are thinned, whether or not their values round-trip (the
learning rate: 7 significant digits; no table or figure reads it)."""
TEXTS = {"summary": records.SUMMARY, "config": ".hydra/config.yaml", "overrides": ".hydra/overrides.yaml"}
"""Columns of the summaries table that hold a run's file verbatim, and the file."""
DIAGNOSTIC_PREFIXES = ("cos_", "gnorm_")
DIAGNOSTICS = ("alignment", "grad_rank", "grad_cond")
WEIGHT_POLICIES = ("report", "all", "none")
"""Which runs' weights a part keeps: those the report draws (per problem, the completed run with the
lowest final error metric), every run's, or none."""


def part_path(directory: Path, number: int, kind: str) -> Path:
    return directory / (f"part-{number:04d}-{kind}." + ("safetensors" if kind == "weights" else "parquet"))


def part_numbers(directory: str | os.PathLike) -> list[int]:
    """The parts of a packed directory (those with a summaries file: it is written last)."""
    directory = Path(directory)
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return sorted(int(m.group(1)) for m in map(PART_FILE.match, names) if m and m.group(2) == "summaries")


def is_packed(directory: str | os.PathLike) -> bool:
    return bool(part_numbers(directory))


def is_diagnostic_column(name: str) -> bool:
    """A gradient diagnostic (:mod:`pinnbench.report.conflicts`): rows holding one are never thinned."""
    return name.startswith(DIAGNOSTIC_PREFIXES) or name in DIAGNOSTICS


def is_evaluation_column(name: str) -> bool:
    """A test error (``test_mse``, ``mse_u``, ``rel_l2``, ``nu_rel_error``, …)."""
    from pinnbench.report.collect import is_error_column

    return not is_diagnostic_column(name) and (is_error_column(name) or records.is_error_column(name))


def _evenly(rows: np.ndarray, keep: int | None) -> np.ndarray:
    """At most ``keep`` of ``rows``, evenly spaced (all of them when ``keep`` is None)."""
    if keep is None or len(rows) <= keep:
        return rows
    return rows[np.unique(np.linspace(0, len(rows) - 1, keep).round().astype(int))] if keep > 0 else rows[:0]


def _new_lows(history: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Rows where some column of ``columns`` is below every earlier value of it: the first row at which
    an error reaches any target is one of them."""
    low = np.zeros(len(history), bool)
    for column in columns:
        values = history[column].to_numpy(float)
        evaluated = np.flatnonzero(~np.isnan(values))
        seen = values[evaluated]
        before = np.minimum.accumulate(np.r_[np.inf, seen[:-1]])
        low[evaluated[seen < before]] = True
    return low


def required_rows(history: pd.DataFrame, keep_evaluated: int | None = None) -> np.ndarray:
    """The rows no thinning drops: those with a diagnostic; those with a test error (with
    ``keep_evaluated``, only those where an error reaches a new low, so every time to target is the
    same whatever the target); the first row, each column's last value (final errors and loss weights),
    the first loss weight that differs from 1, and every row where a text column changes."""
    diagnostics = [c for c in history.columns if is_diagnostic_column(c)]
    errors = [c for c in history.columns if is_evaluation_column(c)]
    required = history[diagnostics].notna().any(axis=1).to_numpy().copy() if diagnostics \
        else np.zeros(len(history), bool)
    if errors:
        required |= history[errors].notna().any(axis=1).to_numpy() if keep_evaluated is None \
            else _new_lows(history, errors)
    required[0] = True
    for column in history.columns:
        logged = np.flatnonzero(history[column].notna().to_numpy())
        if len(logged):
            required[logged[-1]] = True
        if not pd.api.types.is_numeric_dtype(history[column]):
            values = history[column].astype(object)
            required |= (values != values.shift()).to_numpy()
        elif column.startswith("weight_"):
            moved = np.flatnonzero((history[column].notna() & (history[column] != 1.0)).to_numpy())
            required[moved[:1]] = True
    return required


def thin_rows(history: pd.DataFrame, keep: int | None, keep_evaluated: int | None = None) -> pd.DataFrame:
    """``history`` with its :func:`required_rows`, at most ``keep_evaluated`` other rows with a test
    error and at most ``keep`` of the rows with neither an error nor a diagnostic (evenly spaced;
    None: all of them)."""
    if (keep is None and keep_evaluated is None) or len(history) <= 2:
        return history
    required = required_rows(history, keep_evaluated)
    errors = [c for c in history.columns if is_evaluation_column(c)]
    evaluated = history[errors].notna().any(axis=1).to_numpy() if errors else np.zeros(len(history), bool)
    kept = required.copy()
    kept[_evenly(np.flatnonzero(~required & evaluated), keep_evaluated)] = True
    kept[_evenly(np.flatnonzero(~required & ~evaluated), keep)] = True
    return history[kept].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------- reading


@dataclass
class Packed:
    """The parts of one packed directory, read: ``summaries`` (one row per run, indexed by run, with
    the part it is in), the histories and weights read part by part when first asked for."""

    root: Path
    summaries: pd.DataFrame
    _histories: dict[int, dict[str, pd.DataFrame]] = field(default_factory=dict)

    def __contains__(self, run: str) -> bool:
        return run in self.summaries.index

    def runs(self) -> list[str]:
        return list(self.summaries.index)

    def text(self, run: str, key: str) -> str | None:
        value = self.summaries.at[run, key]
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)

    def summary(self, run: str) -> dict[str, Any] | None:
        text = self.text(run, "summary")
        return None if text is None else json.loads(text)

    def history(self, run: str) -> pd.DataFrame | None:
        columns = json.loads(self.text(run, "history_columns") or "[]")
        if not columns:
            return None
        part = int(self.summaries.at[run, "part"])
        if part not in self._histories:
            self._histories[part] = _read_histories(part_path(self.root, part, "histories"))
        frame = self._histories[part].get(run)
        if frame is None:
            return None
        return frame[[name for name, _ in columns]].astype(dict(columns)).reset_index(drop=True)

    def weights(self, run: str) -> dict[str, Any] | None:
        """The run's trained weights (a state dict of tensors), or None when its part does not keep them."""
        if not bool(self.summaries.at[run, "weights"]):
            return None
        part = int(self.summaries.at[run, "part"])
        tensors = _read_weights(part_path(self.root, part, "weights"))
        prefix = run + "/"
        return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}


def _read_histories(path: Path) -> dict[str, pd.DataFrame]:
    import pyarrow.parquet as pq

    if not path.is_file():
        raise ConfigError(f"{path} is missing: its part's summaries name histories it should hold.")
    table = pq.read_table(path)
    frame = table.to_pandas()
    aliases = json.loads((table.schema.metadata or {}).get(b"pinnbench", b"{}")).get("aliases", {})
    for column, same in aliases.items():
        frame[column] = frame[same]
    return {str(run): rows.drop(columns=RUN) for run, rows in frame.groupby(RUN, sort=False)}


def _read_weights(path: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    if not path.is_file():
        raise ConfigError(f"{path} is missing: its part's summaries name weights it should hold.")
    return load_file(path)


@functools.lru_cache(maxsize=16)
def _open(root: Path, stamp: tuple) -> Packed:
    frames = []
    for number in part_numbers(root):
        path = part_path(root, number, "summaries")
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:
            raise records.CorruptRecord(f"{path} cannot be read ({type(exc).__name__}); restore it from git.") from None
        frames.append(frame.assign(part=number))
    summaries = pd.concat(frames, ignore_index=True)
    retried = summaries[RUN].duplicated(keep="last") & summaries["summary"].map(_failed)
    summaries = summaries[~retried]  # a failed run that a later part holds again: the retry replaces it
    twice = summaries[summaries[RUN].duplicated(keep=False)]
    if len(twice):
        run = twice[RUN].iloc[0]
        parts = ", ".join(part_path(root, int(n), "summaries").name for n in twice.loc[twice[RUN] == run, "part"])
        raise ConfigError(f"{root}: run {run} is packed more than once ({parts}); a run belongs to one part: "
                          f"remove one of them.")
    return Packed(root, summaries.set_index(RUN, drop=False))


def _failed(summary_text: Any) -> bool:
    return isinstance(summary_text, str) and json.loads(summary_text).get("status") == "failed"


def open_packed(directory: str | os.PathLike) -> Packed:
    """Every part of the packed directory, read (cached until its files change)."""
    root = Path(directory).resolve()
    if not is_packed(root):
        raise ConfigError(f"{directory} holds no packed records (no part-NNNN-summaries.parquet).")
    stamp = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(root.glob("part-*")))
    return _open(root, stamp)


@dataclass
class Located:
    """A run that lives in a packed directory: the directory read, and the run's name there."""

    packed: Packed
    run: str


def locate(run_dir: str | os.PathLike) -> Located | None:
    """The packed records of ``run_dir`` when no run directory is there and a packed directory above it
    holds a run of that path; None otherwise."""
    run_dir = Path(run_dir)
    if (run_dir / records.SUMMARY).is_file() or (run_dir / ".hydra").is_dir():
        return None
    for parent in run_dir.parents:
        if is_packed(parent):
            packed = open_packed(parent)
            run = run_dir.relative_to(parent).as_posix()
            return Located(packed, run) if run in packed else None
    return None


def read_summary(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """A run's summary, from its directory or from packed records."""
    found = locate(run_dir)
    return found.packed.summary(found.run) if found else records.read_summary(run_dir)


def read_text(run_dir: str | os.PathLike, key: str) -> str | None:
    """One of a run's files (``config``, ``overrides``: see :data:`TEXTS`) as text, or None."""
    found = locate(run_dir)
    if found:
        return found.packed.text(found.run, key)
    path = Path(run_dir) / TEXTS[key]
    return path.read_text() if path.is_file() else None


def packed_runs(directory: Path) -> list[Path]:
    """The runs of a packed directory as paths below it; an error for a run that also has a run
    directory there."""
    runs = [directory / run for run in open_packed(directory).runs()]
    for run_dir in runs:
        if (run_dir / records.SUMMARY).is_file() or (run_dir / ".hydra").is_dir():
            raise ConfigError(f"{run_dir} is both packed in {directory} and a run directory; keep one of them.")
    return runs


# ---------------------------------------------------------------------------------------------- writing


def _history_columns(history: pd.DataFrame) -> str:
    return json.dumps([[c, str(history[c].dtype)] for c in history.columns])


def _summaries_table(rows: list[dict[str, Any]]):
    import pyarrow as pa

    return pa.Table.from_pandas(pd.DataFrame(rows), preserve_index=False)


def read_summaries(directory: str | os.PathLike) -> pd.DataFrame:
    """One row per packed run of ``directory``: ``run``, ``part``, then every field of its summary
    (nested ones flattened: ``provenance.commit``, ``config.problem.name``, …)."""
    table = open_packed(directory).summaries
    fields = pd.json_normalize([json.loads(t) if isinstance(t, str) else {} for t in table["summary"]])
    return pd.concat([table[[RUN, "part"]].reset_index(drop=True), fields], axis=1)


def _float32_where_exact(frame: pd.DataFrame, always: Sequence[str] = ()) -> pd.DataFrame:
    """Float64 columns as float32 where every value round-trips exactly, and those named ``always``."""
    for column in frame.columns:
        if column in always and frame[column].dtype == np.float64:
            frame[column] = frame[column].astype(np.float32)
        elif frame[column].dtype == np.float64:
            values = frame[column].to_numpy()
            with np.errstate(over="ignore"):
                narrow = values.astype(np.float32)
            if np.array_equal(narrow.astype(np.float64), values, equal_nan=True):
                frame[column] = narrow
    return frame


def _write_parquet(table, path: Path, metadata: dict[str, Any]) -> None:
    """``table`` as zstd Parquet: floats split by byte (they compress better so), integers as deltas,
    text in dictionaries; no statistics and no pandas schema (small files), ``metadata`` under the
    ``pinnbench`` key."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = table.replace_schema_metadata({b"pinnbench": json.dumps(metadata).encode()})
    encoding = {}
    for column in table.schema:
        if pa.types.is_floating(column.type):
            encoding[column.name] = "BYTE_STREAM_SPLIT"
        elif pa.types.is_integer(column.type):
            encoding[column.name] = "DELTA_BINARY_PACKED"
    with records.atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", compression_level=19, write_statistics=False,
                       use_dictionary=[c for c in table.column_names if c not in encoding],
                       column_encoding=encoding or None)


def _histories_table(histories: dict[str, pd.DataFrame], float32: Sequence[str] = ()):
    """Every run's rows, a ``run`` column first, float32 where exact; a column equal to an earlier one
    in every row (``test_mse`` and ``test_mse_<reference>``) is kept once: returns the table and
    {column left out: the column it equals}."""
    import pyarrow as pa

    frame = pd.concat([h.assign(**{RUN: run})[[RUN, *h.columns]] for run, h in histories.items()],
                      ignore_index=True)
    aliases: dict[str, str] = {}
    for k, column in enumerate(frame.columns):
        for earlier in frame.columns[:k]:
            if earlier not in aliases and frame[column].dtype == frame[earlier].dtype \
                    and frame[column].equals(frame[earlier]):
                aliases[column] = earlier
                break
    frame = _float32_where_exact(frame.drop(columns=list(aliases)), float32)
    return pa.Table.from_pandas(frame, preserve_index=False), aliases


def weighted_runs(summaries: dict[str, dict[str, Any]], policy: str, keep: Sequence[str] = (),
                  metric: str = "test_mse") -> set[str]:
    """The runs whose weights a part keeps: by ``policy`` (:data:`WEIGHT_POLICIES`) and any run whose
    path matches one of the shell patterns ``keep``. ``report``: per problem, the completed run with the
    lowest final ``metric`` (the run whose fields a report on that metric draws)."""
    chosen = {r for r in summaries if any(fnmatch.fnmatchcase(r, p) for p in keep)}
    if policy == "all":
        return chosen | set(summaries)
    if policy == "none":
        return chosen
    best: dict[tuple[str, str], tuple[float, str]] = {}
    for run, summary in summaries.items():
        if summary.get("status") != "completed":
            continue
        value = summary.get(metric)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            slot = (str(summary.get("problem")), metric)
            if slot not in best or (value, run) < best[slot]:
                best[slot] = (value, run)
    return chosen | {run for _, run in best.values()}


def _model_weights(run_dir: Path) -> dict[str, Any] | None:
    import torch

    if (run_dir / records.CHECKPOINT).is_file():
        return records.load_checkpoint(run_dir / records.CHECKPOINT)["model"]
    if (run_dir / records.MODEL).is_file():
        return torch.load(run_dir / records.MODEL, map_location="cpu", weights_only=True)
    return None


@dataclass
class PackResult:
    part: int | None  # the part written (None: nothing new to pack)
    packed: list[str]
    unchanged: list[str]
    weights: list[str]
    files: list[Path]


def _check_packable(src: Path, dest: Path) -> None:
    if not src.is_dir():
        raise ConfigError(f"{src} is not a directory of runs.")
    if dest.resolve() == src.resolve() or src.resolve() in dest.resolve().parents:
        raise ConfigError(f"{dest} is {src} or inside it; pack into another directory.")


def pack(src: str | os.PathLike, dest: str | os.PathLike, *, match: Sequence[str] = (), thin: int | None = None,
         weights: str = "report", keep_weights: Sequence[str] = (), metric: str = "test_mse",
         thin_evaluations: int | None = None) -> PackResult:
    """Pack every run with a summary below ``src`` (or those matching the shell patterns ``match``)
    into a new part of the packed directory ``dest``. Runs ``dest`` already holds with the same
    summary are left out; one it holds with another summary is an error (parts are never rewritten)."""
    from pinnbench.compact import finished_runs

    src, dest = Path(src), Path(dest)
    _check_packable(src, dest)
    if weights not in WEIGHT_POLICIES:
        raise ConfigError(f"--weights {weights}: allowed: {', '.join(WEIGHT_POLICIES)}.")
    for option, value in (("--thin", thin), ("--thin-evaluations", thin_evaluations)):
        if value is not None and value < 0:
            raise ConfigError(f"{option} {value}: must be 0 or a positive number of rows.")
    existing = open_packed(dest) if is_packed(dest) else None
    new, unchanged = [], []
    for run in (r.as_posix() for r in finished_runs(src, match)):
        if existing is not None and run in existing:
            now = (src / run / records.SUMMARY).read_text()
            if _failed(existing.text(run, "summary")) and now != existing.text(run, "summary"):
                new.append(run)  # a failed run, tried again: the new part replaces it
                continue
            if existing.text(run, "summary") != now:
                part = part_path(dest, int(existing.summaries.at[run, "part"]), "summaries").name
                raise ConfigError(f"{src / run}: already packed in {dest / part} with another summary; parts are "
                                  f"never rewritten: pack the study into a new directory to replace a run.")
            unchanged.append(run)
        elif (dest / run / records.SUMMARY).is_file():
            raise ConfigError(f"{dest / run} is a run directory; pack a study's runs into a directory of packed "
                              f"records only (expand it first, then pack all of it into a new directory).")
        else:
            new.append(run)
    if not new:
        return PackResult(None, [], unchanged, [], [])
    number = max(part_numbers(dest), default=-1) + 1
    chosen = weighted_runs({r: records.read_summary(src / r) for r in new}, weights, keep_weights, metric)
    files, kept = _write_part(src, dest, number, new, (thin, thin_evaluations), chosen,
                              {"weights": weights, "keep_weights": list(keep_weights), "metric": metric})
    return PackResult(number, new, unchanged, kept, files)


def _write_part(src: Path, dest: Path, number: int, runs: list[str], thin: tuple[int | None, int | None],
                chosen: set[str],
                options: dict[str, Any]) -> tuple[list[Path], list[str]]:
    """Write part ``number`` of ``dest``: the records of ``runs`` (below ``src``), the weights of those
    in ``chosen``; returns the files written and the runs whose weights they hold."""
    from safetensors.torch import save_file

    from pinnbench.report.collect import read_history

    rows, histories, tensors = [], {}, {}
    for run in runs:
        history = read_history(src / run)
        kept = thin_rows(history, *thin) if history is not None else None
        model = _model_weights(src / run) if run in chosen else None
        if history is not None and len(kept):
            histories[run] = kept
        if model is not None:
            tensors.update({f"{run}/{name}": value.detach().contiguous() for name, value in model.items()})
        texts = {key: ((src / run / name).read_text() if (src / run / name).is_file() else None)
                 for key, name in TEXTS.items()}
        rows.append({RUN: run, **texts, "history_columns": _history_columns(history) if history is not None else None,
                     "history_rows": None if history is None else len(history),
                     "history_kept": None if kept is None else len(kept), "weights": model is not None,
})
    metadata = {"format": FORMAT, "part": number, "thin": thin[0], "thin_evaluations": thin[1], **options,
                "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    dest.mkdir(parents=True, exist_ok=True)
    files = []
    if histories:
        table, aliases = _histories_table(histories, THINNED_FLOAT32 if thin != (None, None) else ())
        _write_parquet(table, part_path(dest, number, "histories"), {**metadata, "aliases": aliases})
        files.append(part_path(dest, number, "histories"))
    if tensors:
        with records.atomic_path(part_path(dest, number, "weights")) as tmp:
            save_file(tensors, str(tmp), metadata={"format": str(FORMAT), "part": str(number)})  # the rest: in Parquet
            tmp.chmod(0o644)
        files.append(part_path(dest, number, "weights"))
    _write_parquet(_summaries_table(rows), part_path(dest, number, "summaries"), metadata)  # last: marks the part
    return files + [part_path(dest, number, "summaries")], [row[RUN] for row in rows if row["weights"]]


# ---------------------------------------------------------------------------------------------- expanding


def expand_run(packed: Packed, run: str, run_dir: Path) -> None:
    """Write one packed run as an ordinary run directory (summary, config, overrides, history, and
    ``model.pt`` where its weights are kept)."""
    for key, name in TEXTS.items():
        text = packed.text(run, key)
        if text is not None:
            with records.atomic_path(run_dir / name) as tmp:
                tmp.write_text(text)
    history = packed.history(run)
    if history is not None:
        with records.atomic_path(run_dir / records.HISTORY) as tmp:
            history.to_csv(tmp, index=False)
    model = packed.weights(run)
    if model is not None:
        records.save_checkpoint(run_dir / records.MODEL, model)


def expand(study: str | os.PathLike, dest: str | os.PathLike, match: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """Write every run packed in ``study`` (or those matching the shell patterns ``match``) as a run
    directory below ``dest``; a run ``dest`` already has a directory for is left as it is. Returns
    (runs written, runs left as they were)."""
    study, dest = Path(study), Path(dest)
    packed = open_packed(study)
    written, left = [], []
    for run in packed.runs():
        if match and not any(fnmatch.fnmatchcase(run, p) for p in match):
            continue
        if (dest / run).exists():
            left.append(run)
            continue
        expand_run(packed, run, dest / run)
        written.append(run)
    return written, left


def study_size(directory: str | os.PathLike) -> int:
    """Bytes of the files below ``directory``."""
    return sum(p.stat().st_size for p in Path(directory).rglob("*") if p.is_file())

