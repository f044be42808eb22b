"""``pinnbench report RUNS_DIR... --out OUT_DIR``: tables and figures from run directories."""

from __future__ import annotations

from pinnbench.cli import add_command, parser


@add_command("report", "tables and figures from run directories (statistics against Adam, ranks, curves)")
def report(argv: list[str]) -> None:
    from pinnbench.report import build_report
    from pinnbench.report.collect import DEFAULT_METRIC
    from pinnbench.report.overview import IMPROVEMENT_STYLES
    from pinnbench.report.tables import BASELINE, CI_SEED, N_RESAMPLES, errors_view, to_markdown, versus_view
    from pinnbench.report.targets import parse_targets

    args = parser("report", "Read every run directory below RUNS_DIR (any depth) and write runs.csv, "
                            "summary.{csv,md,tex}, ranks.csv, time_to_target.csv, pairs.csv and figures/ into OUT_DIR.")
    args.add_argument("runs", nargs="*", metavar="RUNS_DIR", help="directories holding run directories")
    args.add_argument("--tuned", nargs="+", metavar="TUNE_DIR", default=[],
                      help="sweep directories of pinnbench tune: trials, selections, tuned beside the untuned runs of "
                           "RUNS_DIR, robustness figures, into OUT_DIR/tuned/ (docs/tuning.md)")
    args.add_argument("--out", required=True, metavar="OUT_DIR", help="where to write the report")
    args.add_argument("--metric", default=DEFAULT_METRIC,
                      help="the error every table and figure uses: test_mse (default), rel_l2, or any error column "
                           "the runs record (mse_u, rel_l2_u, ...)")
    args.add_argument("--target", action="append", metavar="PROBLEM=VALUE",
                      help="error target of a problem for the time to target (repeat per problem); default: "
                           "Adam's median final error in each setting")
    args.add_argument("--improvement-style", choices=IMPROVEMENT_STYLES, default="log",
                      help="improvement figure: log (median log10(E_Adam/E) over seed pairs, default) or paper "
                           "(percent on seed means)")
    args.add_argument("--baseline", default=BASELINE, metavar="METHOD",
                      help="the method every other is compared with, as the runs label it (default: adam; e.g. "
                           "adam+lbfgs for trainers that all finish with L-BFGS)")
    args.add_argument("--no-figures", action="store_true", help="tables only")
    args.add_argument("--resamples", type=int, default=N_RESAMPLES, help="bootstrap resamples for the intervals")
    args.add_argument("--ci-seed", type=int, default=CI_SEED, help="seed of the bootstrap's random generator")
    options = args.parse_args(argv)
    if options.resamples < 1:
        args.error("--resamples must be a positive integer")
    if not options.runs and not options.tuned:
        args.error("give RUNS_DIR, or --tuned TUNE_DIR, or both")
    if options.tuned:
        from pathlib import Path

        from pinnbench.report.collect import collect_runs
        from pinnbench.report.tuned import build_tuned_report

        untuned = collect_runs(options.runs, options.metric) if options.runs else None
        out = Path(options.out) / "tuned"
        written = build_tuned_report(options.tuned, untuned, out, options.metric, figures=not options.no_figures)
        print(f"wrote {len(written)} files to {out} (trials.csv, selected.csv, trial_errors.csv, tuned_vs_untuned.csv, "
              f"tuned.md{', figures/' if not options.no_figures else ''})")
        if not options.runs:
            return

    result = build_report(options.runs, options.out, figures=not options.no_figures, n_resamples=options.resamples,
                          seed=options.ci_seed, metric=options.metric, given_targets=parse_targets(options.target),
                          improvement_style=options.improvement_style, baseline=options.baseline)
    print(f"{result.counts()}. Error metric: {result.metric}.\n")
    print(to_markdown(errors_view(result.summary)) + "\n")
    print(to_markdown(versus_view(result.summary, result.baseline)))
    for note in result.notes:
        print(f"note: {note}")
    print(f"\nwrote {len(result.files)} files to {options.out} (summary.md, summary.csv, summary.tex, runs.csv, "
          f"ranks.csv, time_to_target.csv, pairs.csv{', conflicts.csv' if result.conflicts is not None else ''}"
          f"{', weights.csv' if result.weights is not None else ''}{', figures/' if not options.no_figures else ''})")
