"""Every command the front pages and the documentation show is checked.

The commands are taken from README.md, results/README.md, every study's README and docs/*.md: the
``bash`` code blocks and the inline code that starts with ``pinnbench``. A block is run by bash in
an empty folder with ``pinnbench`` and ``make`` defined as functions that only record their
arguments (no other program can be found), so loops, variables, line continuations and quotes
expand as a user's shell expands them, and nothing else runs.

Each recorded command is then checked without training:

* ``pinnbench run``: the overrides go through the validation a run does before training (the
  launcher check, the override check, Hydra's composition, :func:`pinnbench.train.prepare`); a sweep
  (``-m`` or an experiment that is one) is composed and prepared for every value of every swept key,
  one key at a time.
* ``pinnbench bench``: :func:`pinnbench.bench.compose`, the bench's own validation.
* ``pinnbench tune``: validated as the command does before its first trial (the override check,
  the ``tune.*`` settings, every study of the sweep composed and prepared); then the trials of every
  study are composed and prepared as a trial is, one key at a time: for each dimension of the
  study's search space, the trials of the design that hold its lowest and its highest value (or
  each of its choices), and, with ``tune.evaluate=true``, a run on the evaluation seeds (every seed
  for the first study, the first seed for the others). Its
  sweep directory must be one git ignores (or outside the repository). ``tune --spaces`` is run.
* ``pinnbench report``, ``plot``, ``compact``, ``pack``, ``expand``: parsed by their own argument
  parsers; ``report`` needs RUNS_DIR or ``--tuned``. The packed records ``pack`` adds to and
  ``expand`` reads must exist and be packed, unless the command is an example whose path lies in a
  folder git ignores; the sweep ``pack`` reads must exist or lie in such a folder, and ``expand``
  must write into one (or outside the repository).
* ``pinnbench methods`` and ``reference``: run (``reference`` writes into a temporary folder).
* ``make TARGET``: the target exists in the Makefile.

Two substitutions, because they depend on the machine or on earlier runs: ``device=cuda`` is checked
as ``device=cpu``, and ``budget.seconds=adam`` (the seconds of an Adam run found at run time) as a
number. Every ``results/...`` path a command names must exist (a run of packed records counts:
``results/paper_cpu/runs/burgers-cpu/...``), and a report shown in README.md or docs/ must write into
a folder git ignores (or outside the repository).

A subcommand that is not registered, or registered without a check here, fails with a message
saying so: add its check to ``CHECKS``. Sections that build something (their code blocks start
with ``# <path>``: "Adding a problem", "Adding a method") are run for real, in a copy of the code
with those files written into it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from pinnbench import cli, sweep
from pinnbench.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"(?<!`)`(pinnbench [^`]+)`(?!`)")
FILE_BLOCK = re.compile(r"^# ([\w./-]+\.(?:py|yaml))\s*$")
SHELLS = ("bash", "sh", "shell")


def documented_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "results" / "README.md", *sorted((ROOT / "results").glob("*/README.md")),
             *sorted((ROOT / "docs").glob("*.md"))]
    return [f for f in files if f.is_file()]


# ----- extraction -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    source: Path
    line: int
    inline: bool = False

    @property
    def mention(self) -> bool:
        """Inline prose naming a subcommand (`pinnbench plot`), eliding its arguments (`... ...`) or
        giving a placeholder for one (`pinnbench report <study>/runs`)."""
        return self.inline and (len(self.argv) == 2 or any(w in ("...", "…") or PLACEHOLDER.search(w)
                                                           for w in self.argv))

    @property
    def where(self) -> str:
        return f"{self.source.relative_to(ROOT)}:{self.line}"

    def __str__(self) -> str:
        return f"{self.where}: {' '.join(self.argv)}"


PRELUDE = """
__record() { { printf '%s\\0' "$@"; printf '\\n'; } >> "$__RECORD"; }
pinnbench() { __record pinnbench "$@"; }
make() { __record make "$@"; }
nohup() { declare -F "$1" > /dev/null && "$@"; }
__by_path() { :; }
"""
PLACEHOLDER = re.compile(r"<[A-Za-z][\w.-]*>")
REDIRECT = re.compile(r"(?<![<>&])(\d?>>?|&>>?)[ \t]*(?![&\s])[^\s;&|()]+|(?<![<>])<[ \t]*(?![<(\s])[^\s;&|()]+")
BY_PATH = re.compile(r"((?:^|[;&|(`]|\$\(|\b(?:then|do|else|nohup|exec|command|time)\b)[ \t]*(?:\w+=\S*[ \t]+)*)"
                     r"(?=(?:/|\./|\.\./|~/)[^\s;&|()]*)", re.MULTILINE)
"""A command named by its path (``/usr/bin/python -m ...``): PATH does not keep bash from running it."""


def _redirected(match: re.Match) -> str:
    return f"{match.group(1)} /dev/null" if match.group(1) else "< /dev/null"


def _harmless(script: str) -> str:
    """``script`` with its placeholders (``<study>``) quoted, its redirections to /dev/null and every
    program named by its path not run."""
    held = PLACEHOLDER.findall(script)
    script = PLACEHOLDER.sub("__placeholder__", script)
    script = BY_PATH.sub(lambda m: m.group(1) + "__by_path ", REDIRECT.sub(_redirected, script))
    for placeholder in held:
        script = script.replace("__placeholder__", f"'{placeholder}'", 1)
    return script


def shell_words(script: str, workdir: Path) -> list[tuple[str, ...]]:
    """The ``pinnbench`` and ``make`` commands ``script`` runs, expanded by bash, in order; nothing
    else is run (PATH names no folder, a program named by its path is skipped, ``nohup`` runs only
    those two). Redirections read and write /dev/null: a log file in a folder of the page's
    (``>> runs/x.log``) neither hides the command nor is written."""
    record = workdir / "record"
    record.write_bytes(b"")
    (workdir / "script.sh").write_text(PRELUDE + _harmless(script) + "\nwait\n")
    subprocess.run(["/bin/bash", str(workdir / "script.sh")], cwd=workdir, capture_output=True, timeout=60,
                   env={"PATH": "/nonexistent", "__RECORD": str(record), "HOME": str(workdir)})
    lines = record.read_bytes().split(b"\0\n")
    return [tuple(word.decode() for word in line.split(b"\0")) for line in lines if line]


def sections(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each part of a page between level-2 headings."""
    starts = [0] + [m.start() for m in re.finditer(r"^## ", text, re.MULTILINE)] + [len(text)]
    return [(text.count("\n", 0, a) + 1, text[a:b]) for a, b in zip(starts, starts[1:]) if b > a]


def is_tutorial(section: str) -> bool:
    """A section that writes files: one of its Python or YAML blocks starts with ``# <path>``."""
    return any(lang in ("python", "yaml") and FILE_BLOCK.match(body.split("\n", 1)[0])
               for lang, body in FENCE.findall(section))


def commands_of(path: Path, workdir: Path, tutorials: bool = False) -> list[Command]:
    """Every command of ``path`` outside (or, with ``tutorials``, inside) the sections that build something."""
    text = path.read_text()
    found = []
    for offset, section in sections(text):
        if is_tutorial(section) != tutorials:
            continue
        for match in FENCE.finditer(section):
            lang, body = match.group(1), match.group(2)
            line = offset + section.count("\n", 0, match.start()) + 1
            if lang in SHELLS:
                found += [Command(argv, path, line) for argv in shell_words(body, workdir)]
        prose = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), section)
        for match in INLINE.finditer(prose):
            line = offset + prose.count("\n", 0, match.start())
            found += [Command(argv, path, line, inline=True)
                      for argv in shell_words(" ".join(match.group(1).split()), workdir)]
    return found


def file_blocks(section: str) -> dict[str, str]:
    """{path: content} of the blocks of a section that start with ``# <path>``."""
    blocks = {}
    for lang, body in FENCE.findall(section):
        header = FILE_BLOCK.match(body.split("\n", 1)[0])
        if lang in ("python", "yaml") and header:
            blocks[header.group(1)] = body
    return blocks


def python_examples(path: Path) -> list[str]:
    """The Python blocks of ``path`` that are examples to run (not files a tutorial writes)."""
    return [body for lang, body in FENCE.findall(path.read_text())
            if lang == "python" and not FILE_BLOCK.match(body.split("\n", 1)[0])]


# ----- checks -----------------------------------------------------------------------------------
class DocCommandError(AssertionError):
    """A documented command that does not work, with the reason."""


def _substituted(overrides: list[str]) -> list[str]:
    """``device=cuda`` → cpu (no GPU here); ``budget.seconds=adam`` → a number (resolved at run time)."""
    swap = {"device=cuda": "device=cpu", "budget.seconds=adam": "budget.seconds=60"}
    return [swap.get(o, o) for o in overrides]


def _compose(overrides: list[str]):
    """The run configuration of ``overrides`` (Hydra's composition, every error raised)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    cli._register()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(cli.config_dir()), version_base="1.3"):
            return compose("config", overrides=[o for o in overrides if not o.lstrip("+~").startswith("hydra")],
                           return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()


_PREPARED: dict[tuple[str, ...], None] = {}


def _prepare(overrides: list[str]) -> None:
    """Compose and validate one run of ``overrides`` as a run does before training (cached)."""
    from omegaconf import open_dict

    from pinnbench.train import prepare

    key = tuple(overrides)
    if key in _PREPARED:
        return
    cfg = _compose(overrides)
    with open_dict(cfg):
        del cfg["hydra"]
    prepare(cfg)
    _PREPARED[key] = None


def _swept(overrides: list[str], cfg) -> tuple[list[str], dict[str, list[str]]]:
    """(the overrides that are not swept, {swept key: its values}): the sweeper's parameters of the
    composed configuration (an experiment's), replaced by those given on the command line."""
    parser = OverridesParser.create()
    values: dict[str, list[str]] = {}
    params = (cfg.hydra.sweeper.get("params") or {}) if cfg is not None else {}
    for key, value in params.items():
        (o,) = parser.parse_overrides([f"{key}={value}"])
        values[o.get_key_element()] = list(o.sweep_string_iterator()) if o.is_sweep_override() \
            else [o.get_value_element_as_str()]
    fixed = []
    for o in parser.parse_overrides(overrides):
        if o.is_sweep_override():
            values[o.get_key_element()] = list(o.sweep_string_iterator())
        elif o.get_key_element() in values:
            values[o.get_key_element()] = [o.get_value_element_as_str()]
        else:
            fixed.append(o.input_line)
    return fixed, values


def check_run(argv: list[str]) -> None:
    from hydra._internal.utils import get_args_parser
    from hydra.types import RunMode

    args = get_args_parser().parse_args(argv)
    overrides = _substituted(args.overrides)
    sweep.check_launcher(overrides, cli.config_dir())
    cli.check_overrides(overrides)
    fixed, given = _swept(overrides, None)
    cfg = _compose(fixed + [f"{key}={vals[0]}" for key, vals in given.items()])
    if not args.multirun and cfg.hydra.mode != RunMode.MULTIRUN:
        _prepare(overrides)
        return
    fixed, values = _swept(overrides, cfg)
    first = {key: vals[0] for key, vals in values.items()}
    variants = [first] + [{**first, key: value} for key, vals in values.items() for value in vals[1:]]
    for variant in variants:  # every value of every swept key, one key at a time
        _prepare(fixed + [f"{key}={value}" for key, value in variant.items()])


def check_bench(argv: list[str]) -> None:
    from pinnbench import bench

    bench.compose(_substituted(argv))


class _Parsed(Exception):
    pass


def parse_only(command: str, argv: list[str]) -> argparse.Namespace:
    """``argv`` parsed by the parser of ``pinnbench <command>``, the command not run."""
    original = argparse.ArgumentParser.parse_args

    def parse(self, args=None, namespace=None):
        raise _Parsed(original(self, args, namespace))

    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), pytest.MonkeyPatch.context() as patch:
            patch.setattr(argparse.ArgumentParser, "parse_args", parse)
            cli.COMMANDS[command][1](argv)
    except _Parsed as parsed:
        return parsed.args[0]
    except SystemExit:
        raise DocCommandError(f"its arguments do not parse: {stderr.getvalue().strip().splitlines()[-1]}") from None
    raise DocCommandError(f"pinnbench {command} never parsed its arguments")


def run_command(command: str, argv: list[str]) -> str:
    """Run ``pinnbench <command> argv`` in this process; its output."""
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            cli.COMMANDS[command][1](argv)
    except SystemExit as exc:
        if exc.code:
            raise DocCommandError(f"it exits with {exc.code}") from None
    return out.getvalue()


def check_reference(argv: list[str], tmp: Path) -> None:
    args = parse_only("reference", argv)
    out = tmp / Path(args.out).name
    run_command("reference", [a if a != args.out else str(out) for a in argv])
    if not out.is_file():
        raise DocCommandError(f"it wrote no {args.out}")


def check_methods(argv: list[str], tmp: Path) -> None:
    listed = run_command("methods", argv)
    missing = [p.stem for p in (cli.config_dir() / "method").glob("*.yaml") if p.stem not in listed]
    if missing:
        raise DocCommandError(f"it does not list {', '.join(missing)}")


def check_report(argv: list[str]) -> None:
    args = parse_only("report", argv)
    if not args.runs and not args.tuned:  # the command's own check after parsing
        raise DocCommandError("its arguments do not parse: give RUNS_DIR, or --tuned TUNE_DIR, or both")


def _trial_points(dims, points: list[dict]) -> list[int]:
    """The trials to compose, one key at a time: per dimension, the trials holding its lowest and its
    highest value (or the first trial of each of its choices)."""
    chosen: dict[int, None] = {}
    for d in dims:
        values = [p[d.name] for p in points]
        if d.choices is not None:
            firsts = [values.index(c) for c in d.choices if c in values]
        else:
            firsts = [values.index(min(values)), values.index(max(values))]
        chosen.update(dict.fromkeys(firsts))
    return sorted(chosen)


def _prepare_like_tune(composer, overrides: list[str]) -> None:
    """Compose ``overrides`` as a trial (or an evaluation run) is composed and validate it as it is before training."""
    from omegaconf import open_dict

    from pinnbench.train import prepare

    key = ("tune", *overrides)
    if key in _PREPARED:
        return
    cfg = composer.compose(overrides)
    with open_dict(cfg):
        del cfg["hydra"]
    prepare(cfg)
    _PREPARED[key] = None


def check_tune(argv: list[str], tmp: Path) -> None:
    from pinnbench import tune
    from pinnbench.search import design

    if argv[:1] in (["--spaces"], ["-h"], ["--help"]):
        listed = run_command("tune", argv)
        if argv[0] == "--spaces":
            missing = [f"{g} {p.stem}" for g in ("method", "optimizer") for p in (cli.config_dir() / g).glob("*.yaml")
                       if f"{g} {p.stem}:" not in listed]
            if missing:
                raise DocCommandError(f"it does not list the space of {', '.join(missing)}")
        return
    overrides = _substituted(argv)
    cli._register()
    cli.check_overrides([o for o in overrides if not o.lstrip("+~").startswith(("tune.", "tune="))])
    with tune.composing(overrides) as composer:
        studies = tune.plan(composer, overrides)  # tune.* validated; every study composed and prepared
        for study in studies:
            if not _git_ignored(str(study.sweep_dir)):
                raise DocCommandError(f"the study writes into {study.sweep_dir}, which git tracks: set "
                                      f"hydra.sweep.dir to an ignored folder such as runs/ (or /tmp)")
            points = design(study.dims, study.tune.trials, study.tune.seed)
            for k in _trial_points(study.dims, points):
                _prepare_like_tune(composer, study.overrides + study.point_overrides(points[k])
                                   + [f"seed={study.tune.trial_seed + k}"])
            if study.tune.evaluate:  # a selected trial on the evaluation seeds: all of them once, then the first
                for seed in study.tune.eval_seeds[:None if study is studies[0] else 1]:
                    _prepare_like_tune(composer, study.overrides + study.point_overrides(points[0]) + [f"seed={seed}"])


def _example_or_existing(path: str, what: str) -> None:
    """``path`` exists, or lies in a folder git ignores (or outside the repository): a path of an example."""
    if not (ROOT / path).exists() and not _git_ignored(path):
        raise DocCommandError(f"{what} {path} does not exist and is not in a folder git ignores (such as runs/)")


def _packed_study(path: str, what: str) -> None:
    """``path`` holds packed records, or is an example path in an ignored folder."""
    from pinnbench import packed

    _example_or_existing(path, what)
    if (ROOT / path).exists() and not packed.is_packed(ROOT / path):
        raise DocCommandError(f"{what} {path} holds no packed records (part-NNNN-summaries.parquet)")


def check_pack(argv: list[str]) -> None:
    args = parse_only("pack", argv)
    _example_or_existing(args.src, "the sweep it packs,")
    _packed_study(args.dest, "the study it packs into,")


def check_expand(argv: list[str]) -> None:
    args = parse_only("expand", argv)
    _packed_study(args.study, "the study it expands,")
    if not _git_ignored(args.dest):
        raise DocCommandError(f"it writes run directories into {args.dest}, which git tracks: use an ignored folder "
                              f"such as runs/ (or /tmp)")


CHECKS = {
    "run": lambda argv, tmp: check_run(argv),
    "bench": lambda argv, tmp: check_bench(argv),
    "tune": check_tune,
    "report": lambda argv, tmp: check_report(argv),
    "plot": lambda argv, tmp: parse_only("plot", argv),
    "compact": lambda argv, tmp: parse_only("compact", argv),
    "pack": lambda argv, tmp: check_pack(argv),
    "expand": lambda argv, tmp: check_expand(argv),
    "reference": check_reference,
    "methods": check_methods,
}
"""How each subcommand's documented commands are checked; a new subcommand needs an entry."""


def make_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w-]*):", (ROOT / "Makefile").read_text(), re.MULTILINE))


def _git_ignored(path: str) -> bool:
    """Whether ``path`` (relative to the repository, or absolute) is outside the tracked tree:
    ignored by git, or outside the repository."""
    full = (ROOT / path).resolve()
    if ROOT not in full.parents and full != ROOT:
        return True
    done = subprocess.run(["git", "check-ignore", "-q", "--no-index", str(full.relative_to(ROOT))], cwd=ROOT)
    return done.returncode == 0


def _committed(path: str) -> bool:
    """Whether ``path`` (relative to the repository) exists: a file, a folder, or a run of packed records."""
    from pinnbench import packed

    full = ROOT / path
    return full.exists() or packed.locate(full) is not None


def check_paths(command: Command) -> None:
    """``results/...`` paths exist; a report of the front pages or docs writes into an ignored folder."""
    argv = command.argv
    outputs = {argv[i + 1] for i, w in enumerate(argv[:-1]) if w == "--out"}
    if argv[:2] in (("pinnbench", "compact"), ("pinnbench", "expand")) and len(argv) > 3:
        outputs.add(argv[3])  # where the records (the run directories) go
    for word in argv:  # the inputs a command names must be there
        if word.startswith("results/") and word not in outputs and not any(c in word for c in "*?[") \
                and not _committed(word):
            raise DocCommandError(f"{word} does not exist")
    if command.source.parent.name == "results" or command.source.parent.parent.name == "results":
        return  # a study's README regenerates its own committed report
    if command.argv[:2] == ("pinnbench", "report") and "--out" in command.argv:
        out = command.argv[command.argv.index("--out") + 1]
        if not _git_ignored(out):
            raise DocCommandError(f"the report writes into {out}, which git tracks: use an ignored folder such as "
                                  f"reports/ (or /tmp)")


def check_command(command: Command, tmp: Path) -> None:
    """Raise :class:`DocCommandError` (or the command's own error) unless ``command`` works."""
    argv = list(command.argv)
    if argv[0] == "make":
        targets = [a for a in argv[1:] if "=" not in a and not a.startswith("-")]
        missing = [t for t in targets if t not in make_targets()]
        if missing:
            raise DocCommandError(f"the Makefile has no target {', '.join(missing)}")
        return
    cli._load_commands()
    if len(argv) < 2:
        raise DocCommandError("pinnbench without a subcommand")
    sub = argv[1]
    if sub not in cli.COMMANDS:
        raise DocCommandError(f"unknown subcommand {sub!r}: `pinnbench {sub}` is not registered "
                              f"(commands: {', '.join(cli.COMMANDS)})")
    if sub not in CHECKS:
        raise DocCommandError(f"no check for `pinnbench {sub}`: add one to CHECKS in tests/test_docs_commands.py "
                              f"(parse it with its parser, or compose it as `run` is composed)")
    if command.mention:
        return  # the subcommand exists; there is nothing more to run
    check_paths(command)
    CHECKS[sub](argv[2:], tmp)


def verdict(command: Command, tmp: Path) -> str | None:
    """None if ``command`` works, else the reason in one line."""
    try:
        check_command(command, tmp)
    except DocCommandError as exc:
        return str(exc)
    except ConfigError as exc:
        return f"error: {exc}"
    except Exception as exc:  # Hydra's composition errors and the like
        return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
    return None


def _collect(tutorials: bool = False) -> list[Command]:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        return [c for f in documented_files() for c in commands_of(f, Path(folder), tutorials)]


DOCUMENTED = _collect()


# ----- the tests --------------------------------------------------------------------------------
def test_the_pages_show_commands():
    sources = {c.source.name for c in DOCUMENTED}
    assert len(DOCUMENTED) > 50 and {"README.md", "getting-started.md", "sweeps.md", "reports.md"} <= sources


@pytest.mark.parametrize("command", DOCUMENTED, ids=[f"{c.where} {' '.join(c.argv[:4])}" for c in DOCUMENTED])
def test_every_documented_command_works(command, tmp_path):
    problem = verdict(command, tmp_path)
    assert problem is None, f"{command}\n  does not work: {problem}"


def _broken(text: str, source: str = "README.md") -> Command:
    return Command(tuple(shell_words(text, _workdir())[0]), ROOT / source, 1)


def _workdir() -> Path:
    import tempfile

    return Path(tempfile.mkdtemp())


BROKEN = [
    ("pinnbench run lr=abc", "lr takes a number"),
    ("pinnbench run method=nosuch", "nosuch"),
    ("pinnbench run -m method=adam,nosuch seed=0,1", "nosuch"),
    ("pinnbench run +experiment=nosuch", "experiment"),
    ("pinnbench run problem=kovasznay n_losses=3", "n_losses"),
    ("pinnbench run problem.causal.chunk=32", "chunk"),
    ("pinnbench bench bench.iteratons=3", "bench.iterations"),
    ("pinnbench report --out reports/x", "do not parse"),
    ("pinnbench plot --out x.png", "do not parse"),
    ("pinnbench report results/no_such_study/runs --out reports/x", "does not exist"),
    ("pinnbench report runs --out results/mine", "git tracks"),
    ("pinnbench report --tuned --out reports/x", "do not parse"),
    ("pinnbench tune tune.trials=0", "tune.trials=0"),
    ("pinnbench tune tune.sampler=grid", "tune.sampler"),
    ("pinnbench tune 'tune.trainers=[adam,nosuch]'", "nosuch"),
    ("pinnbench tune tune.trials=2 tune.objective=test hydra.sweep.dir=runs/x", "tune.objective"),
    ("pinnbench tune problem=burgers tune.lrr=1 hydra.sweep.dir=runs/x", "tune.lrr"),
    ("pinnbench tune problem=nosuch hydra.sweep.dir=runs/x", "nosuch"),
    ("pinnbench tune 'tune.lr={low:-1.0,high:1.0,scale:linear}' tune.trials=3 hydra.sweep.dir=runs/x",
     "must be positive"),  # only a trial's composed run refuses it: the trials are checked
    ("pinnbench tune tune.trials=2 hydra.sweep.dir=results/x", "git tracks"),
    ("pinnbench pack runs/x results/no_such_study/runs", "does not exist"),
    ("pinnbench pack runs/x results/burgers_cpu/runs", "holds no packed records"),
    ("pinnbench pack --thin -1 runs/x results/paper_cpu/runs", "do not parse"),
    ("pinnbench pack pinnbench/no_such_sweep results/paper_cpu/runs", "not in a folder git ignores"),
    ("pinnbench expand results/burgers_cpu/runs runs/b", "holds no packed records"),
    ("pinnbench expand results/paper_cpu/runs results/mine", "git tracks"),
    ("pinnbench expand results/paper_cpu/runs", "do not parse"),
    ("pinnbench frobnicate --all", "unknown subcommand 'frobnicate'"),
    ("make nosuch", "no target nosuch"),
]


@pytest.mark.parametrize("text, words", BROKEN, ids=[t for t, _ in BROKEN])
def test_broken_commands_fail_the_check(text, words, tmp_path):
    problem = verdict(_broken(text), tmp_path)
    assert problem is not None and words in problem, problem


def test_the_tune_check_prints_every_search_space_and_composes_the_trials(tmp_path, monkeypatch):
    """``--spaces`` is run; the trials holding each dimension's extremes, and the evaluation runs, are composed."""
    from omegaconf import OmegaConf

    from pinnbench.search import design, dimension, group_space

    listed = run_command("tune", ["--spaces"])
    assert "method relobralo: " in listed and "optimizer soap: " in listed
    composed: list[list[str]] = []
    monkeypatch.setattr(sys.modules[__name__], "_prepare_like_tune", lambda composer, o: composed.append(o))
    problem = verdict(_broken("pinnbench tune problem=burgers 'tune.trainers=[adam,relobralo]' tune.trials=6 "
                              "tune.evaluate=true 'tune.eval_seeds=[0,1]' hydra.sweep.dir=runs/x", "docs/x.md"), tmp_path)
    assert problem is None, problem
    lr = dimension("lr", {"low": 1e-4, "high": 1e-1, "scale": "log"}, "lr")
    for method in ("adam", "relobralo"):
        dims = [lr, *group_space("method", OmegaConf.load(cli.config_dir() / "method" / f"{method}.yaml"))]
        points = design(dims, 6, 0)
        mine = [dict(o.split("=", 1) for o in c) for c in composed if f"method={method}" in c]
        trials = [c for c in mine if int(c["seed"]) >= 1000]
        assert 2 <= len(trials) <= 2 * len(dims) and len({c["seed"] for c in trials}) == len(trials)
        for d in dims:
            values = [float(c[d.name]) for c in trials]
            assert min(values) == min(p[d.name] for p in points) and max(values) == max(p[d.name] for p in points)
        evaluations = sorted(c["seed"] for c in mine if int(c["seed"]) < 1000)
        assert evaluations == (["0", "1"] if method == "adam" else ["0"])  # every seed once, then the first


def test_a_registered_subcommand_without_a_check_fails_with_what_to_do(tmp_path, monkeypatch):
    cli._load_commands()
    monkeypatch.setitem(cli.COMMANDS, "tune-example", ("a subcommand added later", lambda argv: None))
    problem = verdict(_broken("pinnbench tune-example method=config"), tmp_path)
    assert problem is not None and "add one to CHECKS" in problem


def test_the_extraction_expands_loops_continuations_and_quotes(tmp_path):
    script = """export OMP_NUM_THREADS=1
for cells in a,b c; do
  pinnbench run "+experiment/x=$cells" seed=0   # a comment
done
pinnbench compact runs/s results/s/runs \\
  $(for m in adam config; do printf -- "--match x/$m-* "; done)
OMP_NUM_THREADS=1 pinnbench report 'runs/a b' --out reports/r
pip install -e ".[dev]"
make test PYTEST_ARGS=-x
pinnbench methods > /no_such_folder/methods.txt < no_such_file
pinnbench report <study>/runs --out <study>
OMP_NUM_THREADS=1 nohup pinnbench tune seed=1 >> no_such_folder/tune.log 2>&1 &
cd / && OMP_NUM_THREADS=1 nohup /bin/touch "$HOME/by-path" && /bin/touch "$HOME/by-path" ; nohup touch x
$(/bin/touch "$HOME/by-path") ./by-path; exec /bin/touch "$HOME/by-path"
"""
    assert shell_words(script, tmp_path) == [
        ("pinnbench", "run", "+experiment/x=a,b", "seed=0"), ("pinnbench", "run", "+experiment/x=c", "seed=0"),
        ("pinnbench", "compact", "runs/s", "results/s/runs", "--match", "x/adam-*", "--match", "x/config-*"),
        ("pinnbench", "report", "runs/a b", "--out", "reports/r"), ("make", "test", "PYTEST_ARGS=-x"),
        ("pinnbench", "methods"), ("pinnbench", "report", "<study>/runs", "--out", "<study>"),
        ("pinnbench", "tune", "seed=1")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record", "script.sh"]  # nothing else written


def test_inline_commands_and_tutorial_sections_are_found(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# T\n\nRun `pinnbench run seed=2` here, `pinnbench report <study>/runs --out <study>` there.\n\n"
                    "## Adding x\n\n```python\n# problems/x.py\n```\n\n```bash\npinnbench run problem=x\n```\n")
    found = commands_of(page, tmp_path)
    assert [c.argv for c in found] == [("pinnbench", "run", "seed=2"),
                                       ("pinnbench", "report", "<study>/runs", "--out", "<study>")]
    assert [c.mention for c in found] == [False, True]  # a placeholder: only the subcommand is checked
    assert [c.argv for c in commands_of(page, tmp_path, tutorials=True)] == [("pinnbench", "run", "problem=x")]


@pytest.mark.parametrize("path", [p for p in documented_files() if python_examples(p)],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_python_examples_run(path):
    for code in python_examples(path):
        exec(compile(code, str(path), "exec"), {"__name__": "docs_example"})


TUTORIALS = [(path, offset, section) for path in documented_files() for offset, section in sections(path.read_text())
             if is_tutorial(section)]


def test_the_tutorials_are_found():
    titles = {section.split("\n", 1)[0] for _, _, section in TUTORIALS}
    assert {"## Adding a problem", "## Adding a method"} <= titles


@pytest.mark.parametrize("path, offset, section", TUTORIALS,
                         ids=[f"{p.relative_to(ROOT)}:{o}" for p, o, _ in TUTORIALS])
def test_a_tutorial_works_as_written(path, offset, section, tmp_path):
    """The files a tutorial shows, written into a copy of the code, and its commands run for real."""
    tree = tmp_path / "tree"
    for folder in ("pinnbench", "problems", "configs"):
        shutil.copytree(ROOT / folder, tree / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for relative, content in file_blocks(section).items():
        (tree / relative).write_text(content)
    commands = [argv for lang, body in FENCE.findall(section) if lang in SHELLS
                for argv in shell_words(body, tmp_path)]
    assert commands, f"{path.name}:{offset}: a tutorial without commands"
    for argv in commands:
        assert argv[0] == "pinnbench", argv
        done = subprocess.run([sys.executable, "-m", "pinnbench", *argv[1:]], cwd=tree, capture_output=True,
                              text=True, timeout=600, env={**_env(), "OMP_NUM_THREADS": "1"})
        assert done.returncode == 0, f"{path.name}:{offset}: {' '.join(argv)}\n{done.stderr[-2000:]}"
    if "unitmean" in section:  # the refusal the page quotes
        done = subprocess.run([sys.executable, "-m", "pinnbench", "run", "method=unitmean", "method.eps=-1"],
                              cwd=tree, capture_output=True, text=True, timeout=600, env=_env())
        assert done.returncode == 2 and "method.eps=-1.0 is out of range; allowed: eps >= 0." in done.stderr
        assert "method.eps=-1.0 is out of range; allowed: eps >= 0." in section


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


RESULTS_PATH = re.compile(r"`(results/[^`\s]*)`")


def test_every_results_path_the_pages_name_exists():
    """`results/...` in the prose of the front pages and docs names something committed (a run of packed
    records included; placeholders such as results/<study>/ and patterns aside)."""
    missing, checked = [], 0
    for path in documented_files():
        for match in RESULTS_PATH.finditer(path.read_text()):
            name = match.group(1).rstrip(".,;:)")
            checked += 1
            if not any(c in name for c in "<>*?[{") and not _committed(name):
                missing.append(f"{path.relative_to(ROOT)}: {name}")
    assert checked > 20 and not missing, "named but not committed:\n" + "\n".join(missing)
