"""``pinnbench report RUNS_DIR... --out OUT_DIR``: tables and figures from run directories."""

from __future__ import annotations

from pinnbench.cli import add_command, parser


@add_command("report", "tables and figures from run directories (improvement over Adam, curves)")
def report(argv: list[str]) -> None:
    from pinnbench.report import build_report
    from pinnbench.report.tables import CI_SEED, N_RESAMPLES, to_markdown

    args = parser("report", "Read every run directory below RUNS_DIR (any depth) and write runs.csv, "
                            "summary.{csv,md,tex} and figures/ into OUT_DIR.")
    args.add_argument("runs", nargs="+", metavar="RUNS_DIR", help="directories holding run directories")
    args.add_argument("--out", required=True, metavar="OUT_DIR", help="where to write the report")
    args.add_argument("--no-figures", action="store_true", help="tables only")
    args.add_argument("--resamples", type=int, default=N_RESAMPLES, help="bootstrap resamples for the CI")
    args.add_argument("--ci-seed", type=int, default=CI_SEED, help="seed of the bootstrap's random generator")
    options = args.parse_args(argv)
    if options.resamples < 1:
        args.error("--resamples must be a positive integer")

    result = build_report(options.runs, options.out, figures=not options.no_figures,
                          n_resamples=options.resamples, seed=options.ci_seed)
    print(result.counts() + ".\n")
    print(to_markdown(result.summary))
    for note in result.notes:
        print(f"note: {note}")
    print(f"\nwrote {len(result.files)} files to {options.out} (summary.md, summary.csv, summary.tex, runs.csv"
          f"{', figures/' if not options.no_figures else ''})")
