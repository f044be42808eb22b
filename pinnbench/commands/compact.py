"""``pinnbench compact SRC DEST``: the compact records of every run below SRC, for committing a study."""

from __future__ import annotations

import sys
from pathlib import Path

from pinnbench.cli import add_command, parser


@add_command("compact", "copy runs' compact records (summary, history, config, weights) for committing a study")
def compact(argv: list[str]) -> None:
    cli = parser("compact", "Copy summary.json, history.csv, .hydra/config.yaml, .hydra/overrides.yaml and the "
                            "trained weights (model.pt) of every finished run below SRC into the same layout "
                            "below DEST; no checkpoints, locks or logs. Runs DEST already holds with the same "
                            "records are left untouched. This is the per-run form (about 100 KB a run); a study is "
                            "committed packed, with `pinnbench pack` (docs/records.md).")
    cli.add_argument("src", help="a sweep directory (e.g. runs/burgers_study)")
    cli.add_argument("dest", help="where the records go (e.g. results/burgers_cpu/runs)")
    cli.add_argument("--match", action="append", default=[], metavar="PATTERN",
                     help="only runs whose path below SRC matches this shell pattern (repeatable), "
                          "e.g. 'burgers-cpu/dcgd-*'")
    args = cli.parse_args(argv)
    from pinnbench.compact import compact as copy_records, finished_runs, git_ignore_rule

    copied = copy_records(args.src, args.dest, args.match)
    unchanged = len(finished_runs(Path(args.src), args.match)) - len(copied)
    print(f"{len(copied)} runs compacted from {args.src} into {args.dest}"
          + (f"; {unchanged} already there unchanged" if unchanged else ""))
    rule = git_ignore_rule(args.dest)
    if rule:
        print(f"warning: {args.dest} is ignored by git ({rule}): these records will not be committed", file=sys.stderr)
