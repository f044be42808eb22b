"""``pinnbench plot RUN_DIR [--out FILE]``: prediction, reference and error fields of a run."""

from __future__ import annotations

from pathlib import Path

from pinnbench.cli import add_command, parser
from pinnbench.errors import ConfigError


@add_command("plot", "draw a run's predicted, reference and error fields (RUN_DIR/fields.png)")
def plot(argv: list[str]) -> None:
    cli = parser("plot", "Draw prediction, reference and absolute error of every field of a trained run.")
    cli.add_argument("run_dir", help="a run directory (with .hydra/config.yaml and checkpoint.pt or model.pt), or a "
                                     "packed run named by the path its directory had (e.g. results/burgers_cpu/runs/"
                                     "burgers-cpu/adam-n2-it3000-seed0)")
    cli.add_argument("--out", default=None, help="image file (default RUN_DIR/fields.png, for a packed run "
                                                 "./<run>-fields.png; .png, .pdf, .svg)")
    args = cli.parse_args(argv)
    if args.out is not None and not Path(args.out).parent.is_dir():
        raise ConfigError(f"--out {args.out!r}: the directory {str(Path(args.out).parent)!r} does not exist.")
    from pinnbench.fieldplot import plot_run

    print(f"fields drawn in {plot_run(args.run_dir, args.out)}")
