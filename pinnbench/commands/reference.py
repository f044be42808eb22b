"""``pinnbench reference PROBLEM --out FILE.npz [--size SIZE]``: a problem's reference solution.

Writes, in float64, ``inputs`` [N, input_dim] (the test grid), ``fields`` [N, n_fields] (the
reference there), ``input_names`` and ``field_names``. The problem is built from its YAML in
``configs/problem/`` exactly as ``pinnbench run problem=PROBLEM`` builds it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pinnbench.cli import add_command, config_dir, parser
from pinnbench.errors import ConfigError
from pinnbench.records import atomic_path
from problems.base import Problem


def problem_names() -> list[str]:
    return sorted(path.stem for path in (config_dir() / "problem").glob("*.yaml"))


def load_problem(name: str, size: str | None = None, dtype: torch.dtype = torch.float64) -> Problem:
    """The problem ``configs/problem/<name>.yaml`` (with ``problem.size=<size>`` if given)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from pinnbench.cli import _register
    from pinnbench.settings import typed_options

    if name not in problem_names():
        raise ConfigError(f"problem {name!r} does not exist; allowed: {', '.join(problem_names())}.")
    _register()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose("config", overrides=[f"problem={name}"] + ([f"problem.size={size}"] if size else []))
    finally:
        GlobalHydra.instance().clear()
    cls, options = typed_options("problem", cfg.problem)
    return cls(options, dtype=dtype)


def check_out(out: str) -> Path:
    """``out`` must name a new or existing .npz file in an existing directory."""
    path = Path(out)
    if path.suffix != ".npz":
        raise ConfigError(f"--out {out!r} must end in .npz.")
    if path.is_dir():
        raise ConfigError(f"--out {out!r} is a directory; give a file name ending in .npz.")
    if not path.parent.is_dir():
        raise ConfigError(f"--out {out!r}: the directory {str(path.parent)!r} does not exist.")
    return path


@add_command("reference", "write a problem's reference solution on its test grid to an .npz file")
def reference(argv: list[str]) -> None:
    cli = parser("reference", __doc__.split("\n\n")[0].strip("`"))
    cli.add_argument("problem", help=f"one of: {', '.join(problem_names())}")
    cli.add_argument("--out", required=True, help="the .npz file to write (its directory must exist)")
    cli.add_argument("--size", default=None, help="problem size (default: the YAML's, e.g. cpu; or paper)")
    args = cli.parse_args(argv)
    out = check_out(args.out)
    problem = load_problem(args.problem, args.size)
    inputs, fields = problem.reference()
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, inputs=np.asarray(inputs, dtype=np.float64), fields=np.asarray(fields, dtype=np.float64),
                     input_names=np.array(problem.input_names), field_names=np.array(problem.field_names))
    print(f"{problem.name}: reference of {len(inputs)} points × fields {', '.join(problem.field_names)} "
          f"written to {out}")
