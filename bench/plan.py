"""python -m bench.plan: how many devices to train a model in a given time, or to serve a given load.

    python -m bench.plan train --params 7e9 --tokens 1e12 --days 30 --device h100 --utilization 0.4
    python -m bench.plan serve --params 7e9 --users 100000 --requests-per-user 10 --per day \\
                               --words-per-answer 300 --device h100 --utilization measured
Training ~6*N FLOPs per token, inference ~2*N per token (N = parameters). Every figure printed is modeled.
"""

from __future__ import annotations

import sys

from bench.cli import Parser, main, positive_float
from hetero.errors import HeteroError
from hetero.planning import (
    KNOWN_DEVICES,
    SECONDS,
    SOURCES,
    device_peak,
    measured_utilization,
    plan_serving,
    plan_training,
)


def parser() -> Parser:
    p = Parser(prog="python -m bench.plan", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    common = Parser(add_help=False)
    common.add_argument("--params", type=positive_float, required=True, help="model parameters, e.g. 7e9")
    common.add_argument("--device", default="h100", help=f"one of {', '.join(KNOWN_DEVICES)} (default h100)")
    common.add_argument("--dtype", default="bfloat16", help="dtype whose peak is used (default bfloat16)")
    common.add_argument(
        "--utilization",
        default="0.4",
        help="fraction of peak achieved (MFU), or 'measured' to take the best matmul utilization "
        "from results/ (default 0.4)",
    )
    common.add_argument("--results", default="results", help="results folder for --utilization measured")
    t = sub.add_parser("train", parents=[common], help="devices to train N params on T tokens in a time")
    t.add_argument("--tokens", type=positive_float, required=True, help="training tokens, e.g. 1e12")
    t.add_argument("--days", type=positive_float, required=True, help="wall-clock budget in days")
    s = sub.add_parser("serve", parents=[common], help="devices to serve users x requests x words")
    s.add_argument("--users", type=positive_float, required=True, help="concurrent users, e.g. 1e6")
    s.add_argument("--requests-per-user", type=positive_float, required=True, help="requests each user sends per --per")
    s.add_argument("--per", default="day", help=f"period of --requests-per-user: {', '.join(SECONDS)} (default day)")
    s.add_argument(
        "--words-per-answer", type=positive_float, required=True, help="words generated per answer, e.g. 300"
    )
    s.add_argument(
        "--tokens-per-word", type=positive_float, default=1.33, help="tokenizer factor (default 1.33, English)"
    )
    s.add_argument(
        "--slo-p99",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help="also the fewest devices whose p99 latency (queueing + answer) stays within SECONDS: M/M/c "
        "(Poisson requests, exponential answer times), the closed form the simulator reproduces",
    )
    return p


def _run(argv=None) -> int:
    args = parser().parse_args(argv)
    peak = device_peak(args.device, args.dtype)
    if args.utilization == "measured":
        util, source = measured_utilization(args.results, args.device, args.dtype)
    else:
        try:
            util, source = float(args.utilization), "given"
        except ValueError:
            raise HeteroError(f"--utilization {args.utilization!r}: give a number in (0, 1] or 'measured'") from None
    if args.mode == "train":
        plan = plan_training(args.params, args.tokens, args.days * 86400, peak, util)
    else:
        plan = plan_serving(
            args.params,
            args.users,
            args.requests_per_user,
            args.per,
            args.words_per_answer,
            args.tokens_per_word,
            peak,
            util,
        )
    print(f"{plan.devices} x {args.device} ({args.dtype})   [modeled: FLOPs only, every device busy all the time]")
    print(f"  need:       {plan.detail}")
    print(
        f"  per device: {peak / 1e12:.3g} TFLOP/s peak ({SOURCES[args.device]}) x {util:.0%} utilization "
        f"({source}) = {plan.per_device_flops / 1e12:.3g} TFLOP/s"
    )
    if args.mode == "serve" and args.slo_p99 is not None:
        _latency_plan(args, plan)
    return 0


def _latency_plan(args, plan) -> None:
    """The fewest devices whose p99 latency meets --slo-p99 at the requested rate (M/M/c), beside the FLOP plan."""
    from hetero.scheduler import queueing

    if not args.slo_p99 > 0:
        raise HeteroError(f"--slo-p99 {args.slo_p99}: give a positive number of seconds")
    rate = args.users * args.requests_per_user / SECONDS[args.per]
    service = args.words_per_answer * args.tokens_per_word * 2 * args.params / plan.per_device_flops
    c, p99 = queueing.servers_for(rate, 1 / service, args.slo_p99)
    print(f"{c} x {args.device} ({args.dtype})   [modeled: M/M/c queue, p99 latency {p99:.3g} s <= {args.slo_p99:g} s]")
    print(
        f"  requests:   {rate:.4g}/s, each answer {service:.3g} s on one device; utilization {rate * service / c:.4%}"
        f" (the FLOP-only fleet: {min(1.0, rate * service / plan.devices):.4%})"
    )


def cli(argv=None) -> int:
    return main(_run, argv, prog="bench.plan")


if __name__ == "__main__":
    sys.exit(cli())
