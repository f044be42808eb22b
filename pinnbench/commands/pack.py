"""``pinnbench pack SRC DEST`` and ``pinnbench expand STUDY DEST``: a study's records in a few files
that only grow, and back to run directories (:mod:`pinnbench.packed`)."""

from __future__ import annotations

from pinnbench.cli import add_command, parser


def _positive_or_zero(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of rows") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative; give 0 or more rows")
    return value


@add_command("pack", "pack runs' records into a new part of a study's packed records (for committing it)")
def pack(argv: list[str]) -> None:
    from pinnbench.packed import WEIGHT_POLICIES

    cli = parser("pack", "Pack the summary, resolved config, overrides and history of every run with a summary below "
                         "SRC, and the weights of the runs a report draws, into the next part of DEST "
                         "(part-NNNN-summaries.parquet, part-NNNN-histories.parquet, part-NNNN-weights.safetensors). "
                         "Earlier parts are never rewritten; runs DEST already holds unchanged are left out.")
    cli.add_argument("src", help="a sweep directory (e.g. runs/burgers_study) or a study's run records")
    cli.add_argument("dest", help="the study's packed records (e.g. results/burgers_cpu/runs)")
    cli.add_argument("--match", action="append", default=[], metavar="PATTERN",
                     help="only runs whose path below SRC matches this shell pattern (repeatable)")
    cli.add_argument("--thin", type=_positive_or_zero, default=None, metavar="N",
                     help="keep at most N of each run's history rows that record only losses, weights and the "
                          "learning rate (evenly spaced); rows with a test error or a diagnostic, the first and the "
                          "last are always kept. Default: keep every row")
    cli.add_argument("--thin-evaluations", type=_positive_or_zero, default=None, metavar="N",
                     help="keep at most N of each run's rows with a test error besides those where an error reaches "
                          "a new low (those keep every time to target). Default: keep every evaluated row")
    cli.add_argument("--weights", choices=WEIGHT_POLICIES, default="report",
                     help="whose trained weights to keep: report (default; per problem, the completed run with the "
                          "lowest final --metric, whose fields the report draws), all, or none")
    cli.add_argument("--metric", default="test_mse",
                     help="the error metric that picks the runs whose weights --weights report keeps (default "
                          "test_mse; use the study's report metric)")
    cli.add_argument("--keep-weights", action="append", default=[], metavar="PATTERN",
                     help="also keep the weights of runs matching this shell pattern (repeatable)")
    args = cli.parse_args(argv)
    from pinnbench.packed import pack as pack_runs

    result = pack_runs(args.src, args.dest, match=args.match, thin=args.thin, weights=args.weights,
                       keep_weights=args.keep_weights, metric=args.metric, thin_evaluations=args.thin_evaluations)
    unchanged = f"; {len(result.unchanged)} already packed unchanged" if result.unchanged else ""
    if result.part is None:
        print(f"nothing new to pack from {args.src} into {args.dest}{unchanged}")
        return
    print(f"{len(result.packed)} runs packed from {args.src} into part {result.part:04d} of {args.dest} "
          f"(weights of {len(result.weights)}){unchanged}")
    for path in result.files:
        print(f"  {path} ({path.stat().st_size / 1024:.1f} KB)")


@add_command("expand", "write a study's packed runs back as run directories (to resume or extend a sweep)")
def expand(argv: list[str]) -> None:
    cli = parser("expand", "Write every run packed in STUDY as an ordinary run directory below DEST: summary.json, "
                           ".hydra/config.yaml, .hydra/overrides.yaml, history.csv and model.pt where its weights are "
                           "kept. A sweep relaunched into DEST skips every finished run. Runs DEST already has are "
                           "left as they are.")
    cli.add_argument("study", help="a directory of packed records (e.g. results/burgers_cpu/runs)")
    cli.add_argument("dest", help="where the run directories go (e.g. runs/burgers_cpu)")
    cli.add_argument("--match", action="append", default=[], metavar="PATTERN",
                     help="only runs whose path matches this shell pattern (repeatable)")
    args = cli.parse_args(argv)
    from pinnbench.packed import expand as expand_runs

    written, left = expand_runs(args.study, args.dest, args.match)
    print(f"{len(written)} runs expanded from {args.study} into {args.dest}"
          + (f"; {len(left)} already there, left as they were" if left else ""))
