"""python -m bench.compare BASE NEW: did NEW get faster or slower than BASE? A verdict per row, for CI.

    python -m bench.compare results/base results/new                    # a table in the terminal
    python -m bench.compare results/base results/new --fail-on-slower   # exit 1 if any row is slower (CI)
    python -m bench.compare results/base results/new --format md > compare.md

Rows of the two bench.run folders are joined on workload, shape, dtype and backend. ratio = NEW's median time /
BASE's, with a 95% bootstrap interval; the verdict (faster, slower, same) comes from a Mann-Whitney U test on the
timed repetitions (samples.csv) and a minimum effect (--threshold). Runs without samples.csv fall back to median and
IQR and say so; a modeled time is compared only with a modeled time (else `incomparable`); rows in one run only are
listed as `only in BASE` / `only in NEW`. Exit status: 0, 1 (--fail-on-slower and a row is slower), 2 (bad input).
"""

from __future__ import annotations

import argparse
import json
import sys

from bench.cli import Parser, main
from hetero.compare import compare_runs, format_markdown, format_text, header, load_run, to_records
from hetero.errors import choices

FORMATS = ("text", "md", "csv", "json")


def parser() -> Parser:
    p = Parser(
        prog="python -m bench.compare",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("base", metavar="BASE", help="run folder of the reference run (holds bench.csv)")
    p.add_argument("new", metavar="NEW", help="run folder of the run to judge")
    p.add_argument(
        "--threshold", type=float, default=0.05, help="smallest change that counts, as a fraction (default 0.05: 5%%)"
    )
    p.add_argument("--alpha", type=float, default=0.05, help="significance level of the test (default 0.05)")
    p.add_argument(
        "--format",
        default="text",
        help=f"one of {', '.join(FORMATS)} (default: text, a terminal table); csv and json carry a verdict column",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap interval (default 0)")
    p.add_argument("--fail-on-slower", action="store_true", help="exit 1 if any row's verdict is slower")
    return p


def _run(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.format not in FORMATS:
        raise choices("--format", args.format, FORMATS)
    base, new = load_run(args.base), load_run(args.new)
    df = compare_runs(base, new, args.threshold, args.alpha, args.seed)
    title = header(base.path, new.path, args.threshold, args.alpha)
    if args.format == "csv":
        sys.stdout.write(df.to_csv(index=False))
    elif args.format == "json":
        print(
            json.dumps(
                {
                    "base": str(base.path),
                    "new": str(new.path),
                    "threshold": args.threshold,
                    "alpha": args.alpha,
                    "rows": to_records(df),
                },
                indent=2,
            )
        )
    elif args.format == "md":
        print(format_markdown(df, title))
    else:
        print(format_text(df, title))
    return 1 if args.fail_on_slower and (df.verdict == "slower").any() else 0


def cli(argv=None) -> int:
    return main(_run, argv, prog="bench.compare")


if __name__ == "__main__":
    sys.exit(cli())
