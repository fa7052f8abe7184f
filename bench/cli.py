"""What every bench command shares: a parser whose errors are one line, and a main() that turns HeteroError
into that same one line with exit status 2 instead of a traceback."""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import threading
from collections.abc import Callable

from hetero.errors import HeteroError


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's usage dump would bury the one line that matters
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(run: Callable[[list[str] | None], int], argv: list[str] | None = None, prog: str = "bench") -> int:
    """Run a program: a HeteroError is one line on stderr and exit 2; Ctrl-C or a SIGTERM (a job killed, a
    timeout) ends it as an interruption, so its `finally` blocks stop Ray's devices and it exits 130."""
    main_thread = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGTERM, _interrupt) if main_thread else None
    try:
        return run(argv)
    except HeteroError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; files already written are complete", file=sys.stderr)
        return 130
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, before)


def output_args(p: argparse.ArgumentParser, default_name: str) -> None:
    """--out, --name and --replace, read by hetero.results.RunFolder: a run never overwrites another."""
    p.add_argument("--out", default="results", help="folder for result files (default results/)")
    p.add_argument(
        "--name",
        default=None,
        help=f"run folder under --out (default {default_name}); an existing one is refused unless --replace",
    )
    p.add_argument(
        "--replace",
        action="store_true",
        help="replace the run folder --name names: the new run is written to a temporary folder beside "
        "it and swapped in when it ends, so the earlier run stays whole until then",
    )


def run_folder(args, default: str):
    """The RunFolder for --out/--name/--replace (checked now, created when the run first writes)."""
    from hetero.results import RunFolder

    return RunFolder(args.out, args.name, args.replace, default)


def csv_list(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


# argparse `type=` functions: an out-of-range number is one line naming the value and the valid range, exit 2.
def _number(kind, text: str, ok, valid: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {valid}") from None
    if not (math.isfinite(value) and ok(value)):
        raise argparse.ArgumentTypeError(f"{text!r} is not {valid}")
    return value


def positive_float(text: str) -> float:
    return _number(float, text, lambda v: v > 0, "a finite number > 0")


def nonneg_float(text: str) -> float:
    return _number(float, text, lambda v: v >= 0, "a finite number >= 0")


def positive_int(text: str) -> int:
    return _number(int, text, lambda v: v >= 1, "an integer >= 1")


def nonneg_int(text: str) -> int:
    return _number(int, text, lambda v: v >= 0, "an integer >= 0")


def thread_count(text: str) -> int:
    """1 .. this machine's logical CPUs: more threads than CPUs would be recorded but never run."""
    cpus = os.cpu_count() or 1
    return _number(int, text, lambda v: 1 <= v <= cpus, f"an integer from 1 to {cpus} (this machine's CPUs)")


def parse_loads(text: str) -> list[float]:
    """--load '0.5,0.8': fractions of a device mix's capacity, each above 0 and below 10."""
    try:
        loads = [float(x) for x in csv_list(text)]
    except ValueError:
        raise HeteroError(f"--load {text!r}: give numbers, e.g. 0.5,0.8") from None
    if not loads or any(not 0 < x < 10 for x in loads):
        raise HeteroError(f"--load {text!r}: each load must be above 0 (1 = the mix's capacity) and below 10")
    return loads


def stream_arguments(p) -> None:
    """The options of a stream of requests (bench.schedule and bench.simulate)."""
    p.add_argument(
        "--arrivals",
        default=None,
        help="run a stream instead of a batch: poisson (open loop, seeded), constant, or trace:FILE "
        "(CSV: time,kind); a request is one task (mixed), a transformer layer or a GAN step",
    )
    p.add_argument(
        "--load",
        default="0.8",
        help="with --arrivals: comma list of loads, fractions of the capacity the "
        "perf model predicts for the mix (default 0.8)",
    )
    p.add_argument(
        "--requests",
        type=positive_int,
        default=None,
        help="with --arrivals: requests in the stream (default: the --tasks count, else 200)",
    )
    p.add_argument(
        "--slo", type=positive_float, default=None, help="with --arrivals: a latency target in seconds (p99)"
    )


def stream_table(rows, slo) -> str:
    """Stream rows (hetero.scheduler.streams.COLUMNS) as a terminal table, then the knee of each mix and policy."""
    from hetero.scheduler.streams import knee

    lines = [
        f"{'mix':28s} {'taskset':14s} {'policy':12s} {'load':>5s} {'req/s':>9s} {'p50 s':>9s} {'p99 s':>9s} "
        f"{'wait s':>9s} {'over slo':>8s}"
    ]
    for r in rows:
        lines.append(
            f"{r['mix'][:28]:28s} {r['taskset']:14s} {r['policy']:12s} {r['load']:5.2f} "
            f"{r['rate_per_s']:9.4g} {r['p50_s']:9.4g} {r['p99_s']:9.4g} {r['mean_wait_s']:9.4g} "
            f"{'-' if r['over_slo'] is None else r['over_slo']:>8}"
        )
    if slo is not None:
        groups: dict = {}
        for r in rows:
            groups.setdefault((r["mix"], r["taskset"], r["policy"]), []).append(r)
        for (mix, ts, pol), rs in groups.items():
            k = knee(rs, slo)
            lines.append(f"knee {mix} {ts} {pol}: " + (f"load {k}" if k is not None else f"no load meets p99 {slo} s"))
    return "\n".join(lines)


def model_arguments(p) -> None:
    """--model and --from-results: the perf model a scheduling program reads and learns into."""
    p.add_argument(
        "--model",
        default=None,
        help="perf model file (default $HETERO_PERFMODEL, else perfmodel.json in $HETERO_CACHE_DIR or the "
        "user cache folder: ~/.cache/hetero on Linux)",
    )
    p.add_argument(
        "--from-results",
        default="results",
        help="ingest <dir>/*/bench.csv into the model (default results; '' to skip)",
    )


def load_model(args, note):
    """The perf model of --model, with --from-results' bench.csv medians ingested."""
    from pathlib import Path

    from hetero.scheduler.perfmodel import PerfModel

    model = PerfModel.load(Path(args.model) if args.model else None, warn=note)
    if args.from_results:
        model.ingest_results(args.from_results, warn=note)
    return model
