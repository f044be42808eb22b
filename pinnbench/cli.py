"""Command line: ``pinnbench run [overrides]``, ``pinnbench reference``, ``pinnbench plot``, …

``run`` is a Hydra application (overrides, ``-m`` multirun, launchers); the other commands are
plain argparse programs.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf, open_dict

from pinnbench.errors import ConfigError
from pinnbench.naming import run_name

def config_dir() -> Path:
    """The Hydra config tree: packaged inside a wheel, or the repository's ``configs/``."""
    packaged = Path(__file__).parent / "configs"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / "configs"


def _register() -> None:
    from pinnbench.settings import register_schema

    register_schema()
    if not OmegaConf.has_resolver("run_name"):
        OmegaConf.register_new_resolver("run_name", run_name)


GROUPS = ("problem", "method", "optimizer", "finish", "budget", "logger")
"""Config groups chosen by file name: ``problem=burgers`` is ``configs/problem/burgers.yaml``
(``logger`` takes a list too: ``logger=[tensorboard,mlflow]``)."""


def check_overrides(overrides: list[str]) -> None:
    """Fail early, with the allowed keys, on an override naming no key of the config."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from pinnbench.settings import RunConfig, typed_options

    parsed = OverridesParser.create().parse_overrides(overrides)
    top = {f.name for f in dataclasses.fields(RunConfig)}
    choices = []
    for o in parsed:
        key = o.key_or_group
        if key.startswith("hydra") or o.package is not None or o.is_add() or o.is_force_add() or o.is_delete():
            continue
        head = key.split(".")[0]
        if head not in top:
            raise ConfigError(f"{key} is not a setting; allowed: {', '.join(sorted(top))} "
                              f"(and problem.*, method.*, optimizer.*, finish.*, budget.*, logger.* options).")
        if key in GROUPS:
            values = list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.value()]
            values = [v for value in values for v in (value if isinstance(value, list) else [value])]
            offered = sorted(p.stem for p in (config_dir() / key).glob("*.yaml"))
            for value in values:
                if str(value) not in offered:
                    raise ConfigError(f"{key}={value} is not one of configs/{key}/; allowed: {', '.join(offered)}.")
        if "." not in key and not o.is_sweep_override():
            choices.append(o.input_line)
        if key not in GROUPS and head not in ("problem", "method", "optimizer", "finish"):
            check_type(key, list(o.sweep_iterator()) if o.is_sweep_override() else [o.value()])
    typed_groups = ("problem", "method", "optimizer", "finish")
    dotted = [o for o in parsed if "." in o.key_or_group and o.key_or_group.split(".")[0] in typed_groups
              and not o.is_add() and not o.is_force_add()]
    if not dotted:
        return
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose("config", overrides=[c for c in choices if c.split("=")[0] in typed_groups])
    except Exception:
        return  # Hydra's own error for a bad group choice is reported by the run itself
    finally:
        GlobalHydra.instance().clear()
    for o in dotted:
        group, option = o.key_or_group.split(".", 1)
        cls, _ = typed_options(group, cfg[group])
        schema, path = cls.Options, option.split(".")
        for depth, name in enumerate(path):  # into nested option dataclasses (problem.causal.chunks)
            allowed = [f.name for f in dataclasses.fields(schema)]
            if name not in allowed:
                where = f"{group} {cfg[group].name!r}" if depth == 0 else f"{group}.{'.'.join(path[:depth])}"
                raise ConfigError(f"{group}.{option} is not an option of {where}; allowed: {', '.join(allowed)}.")
            schema = typing.get_type_hints(schema).get(name)
            if not dataclasses.is_dataclass(schema):
                break


TYPE_WORDS = {float: "a number", int: "an integer", bool: "true or false", str: "a string"}


def _expected(schema: type, path: list[str]) -> tuple[str, Any]:
    """(the type of the setting at ``path`` in words, its default) from the dataclass ``schema``."""
    default: Any = schema()
    hint: Any = schema
    for name in path:
        hint = typing.get_type_hints(hint).get(name, Any) if dataclasses.is_dataclass(hint) else Any
        default = getattr(default, name, None)
    optional = type(None) in typing.get_args(hint)
    base = next((a for a in typing.get_args(hint) if a is not type(None)), hint) if optional else hint
    words = TYPE_WORDS.get(base, getattr(base, "__name__", str(base)))
    return words + (" or null" if optional else ""), default


def check_type(key: str, values: list[Any]) -> None:
    """A value of the wrong type for a top-level, ``budget.*`` or ``diagnostics.*`` setting fails in one
    line naming the key, the type it takes and its default (``lr=abc``), as every other mistake does."""
    from omegaconf.errors import OmegaConfBaseException

    from pinnbench.settings import RunConfig

    schema = OmegaConf.structured(RunConfig)
    for value in values:
        try:
            OmegaConf.update(schema, key, value, merge=True)
        except OmegaConfBaseException:
            words, default = _expected(RunConfig, key.split("."))
            default = {None: "null", True: "true", False: "false"}.get(default, default) \
                if not isinstance(default, (int, float)) or isinstance(default, bool) else default
            raise ConfigError(f"{key}={value}: {key} takes {words} (default {default}); "
                              f"{value!r} is not one.") from None


def check_single_run(overrides: list[str]) -> None:
    """Validate a single run's whole configuration before Hydra creates its directory."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    from pinnbench.train import prepare

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose("config", overrides=[o for o in overrides if not o.lstrip("+~").startswith("hydra")],
                          return_hydra_config=True)
    except Exception:
        return  # Hydra reports its own composition errors (unknown group option, bad type) when it runs
    finally:
        GlobalHydra.instance().clear()
    if cfg.hydra.mode == RunMode.MULTIRUN:
        return  # an experiment that is a sweep (e.g. on a login node without the jobs' GPU): jobs check themselves
    with open_dict(cfg):
        del cfg["hydra"]
    prepare(cfg)


REFERENCES = {"paper": "the paper's reference data", "exact": "the exact reference"}
"""What ``test_reference`` in a summary means, in words."""


def finished_lines(summary: dict[str, Any], run_dir: Path) -> str:
    """The end of a run: its errors and against which reference, where its records are, and the
    command that compares it with other runs (a report into the git-ignored ``reports/``)."""
    def number(key: str) -> str:
        value = summary.get(key)
        return "none" if value is None else f"{value:.3e}"

    reference = summary.get("test_reference", "exact")
    errors = f"final test MSE {number('test_mse')}, relative L2 {number('rel_l2')}, " \
             f"against {REFERENCES.get(reference, reference)}"
    other = "exact" if reference == "paper" else "paper"
    if summary.get(f"test_mse_{other}") is not None:
        errors += f" (against {REFERENCES[other]}: MSE {number(f'test_mse_{other}')})"
    run_dir = _shown(Path(run_dir))
    group = run_dir.parent
    return (f"{summary['status']}: {summary['iterations']} iterations in {summary['seconds']:.1f} s; {errors}\n"
            f"records in {run_dir}\n"
            f"compare with other runs: pinnbench report {group} --out reports/{group.name}")


def _shown(path: Path) -> Path:
    """``path`` relative to the working directory when it lies below it (as the user typed it)."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()) if path.is_absolute() else path
    except ValueError:
        return path


def _run_task(cfg: DictConfig) -> Any:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from pinnbench.budget import adam_seconds
    from pinnbench.naming import ADAM, adam_run_name
    from pinnbench.sweep import run_job
    from pinnbench.train import DIVERGED, prepare, resolved_config, schema_defaults, train

    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    run_dir = Path(hydra_cfg.runtime.output_dir)

    def setup():
        """The run's setup, ``budget.seconds=adam`` replaced by the time of the Adam run of the same
        setting beside this run (``<sweep dir>/<problem>-<size>/adam-n<k>-it<N>-seed<s>``)."""
        if cfg.budget.kind == "walltime" and cfg.budget.seconds == ADAM:
            adam_dir = run_dir.parent.parent / adam_run_name(cfg, hydra_cfg.runtime.choices.problem,
                                                             hydra_cfg.overrides.task)
            with open_dict(cfg):
                cfg.budget.seconds, cfg.budget.adam_run = adam_seconds(adam_dir, cfg.device, cfg.budget.clock), str(adam_dir)
        return prepare(cfg)

    def fingerprint(built):
        return resolved_config(built), schema_defaults(built)

    def work() -> dict[str, Any]:
        summary = train(setup(), run_dir, study_dir=Path(str(hydra_cfg.sweep.dir)) if multirun else None)
        if not summary.get("skipped"):
            print(finished_lines(summary, run_dir), flush=True)
        return summary

    try:
        summary = run_job(cfg, run_dir, work, catch=multirun,  # skips finished or locked runs
                          config_now=lambda: fingerprint(setup()))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    if summary["status"] == "refused":
        return summary
    if summary["status"] == DIVERGED and not multirun:
        sys.exit(1)
    return summary


def run(overrides: list[str]) -> None:
    """``pinnbench run``: a Hydra application over ``configs/``."""
    import hydra

    from hydra._internal.utils import get_args_parser

    from pinnbench import sweep

    _register()
    args = get_args_parser().parse_args(overrides)  # Hydra's own flags (-m, --cfg job, ...) set apart
    plain = args.overrides
    try:
        sweep.check_launcher(plain, config_dir())
        check_overrides(plain)
        if not args.multirun:
            check_single_run(plain)
    except ConfigError as exc:
        _fail(exc)
    app: Callable[[], Any] = hydra.main(config_path=str(config_dir()), config_name="config",
                                        version_base="1.3")(_run_task)
    sys.argv = ["pinnbench run", *overrides]
    try:
        app()
    finally:  # a sweep reports its runs even when a launcher gave up on one (e.g. a Slurm job killed)
        if sweep.CURRENT is not None and not sweep.CURRENT.reported:
            sweep.report(sweep.CURRENT)
    if sweep.CURRENT is not None and not sweep.CURRENT.ok:
        sys.exit(1)


def _fail(exc: Exception, code: int = 2) -> None:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(code)


COMMANDS: dict[str, tuple[str, Callable[[list[str]], None]]] = {
    "run": ("train one run, or a sweep with -m (Hydra overrides)", run),
}


def add_command(name: str, help_text: str) -> Callable:
    """Register a subcommand ``fn(argv)``; modules add theirs by importing this."""

    def decorate(fn: Callable[[list[str]], None]) -> Callable[[list[str]], None]:
        COMMANDS[name] = (help_text, fn)
        return fn

    return decorate


def _load_commands() -> None:
    import importlib
    import pkgutil

    import pinnbench.commands as commands

    for module in pkgutil.iter_modules(commands.__path__):
        importlib.import_module(f"pinnbench.commands.{module.name}")


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    _load_commands()
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: pinnbench COMMAND [ARGS]\n\ncommands:")
        for name, (help_text, _) in COMMANDS.items():
            print(f"  {name:<10} {help_text}")
        print("\n`pinnbench run` with no argument trains Burgers with ConFIG on a CPU-sized default.")
        sys.exit(0 if argv else 2)
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        _fail(ConfigError(f"unknown command {command!r}; allowed: {', '.join(COMMANDS)}."))
    try:
        COMMANDS[command][1](rest)
    except ConfigError as exc:
        _fail(exc)


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=f"pinnbench {prog}", description=description)
