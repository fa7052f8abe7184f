"""python -m bench.simulate: the scheduler's own policies on device mixes you may not own, by discrete-event
simulation with per-device profiles (measured where results/ has them, the FPGA model's, or a datasheet roofline).

    python -m bench.simulate --mix 8xh100,4xu250,1xcpu --tasks mixed:100000
    python -m bench.simulate --mix cpu --mix 2xh100 --mix 2xh100,4xu250 --policy all --tasks gan:16
    python -m bench.simulate --replay results/schedule-numba-opencl     # a real run's makespan vs the simulator's
Kinds: cpu (this machine's numba, measured), h100 / h200 / a100 (cupy measured where results/ has that GPU, else
roofline), u250 / arria10 / stratix10 or any fpga_model preset (modeled), or a backend measured here (numba,
opencl, ...). Every simulated time is modeled; the table says which profiles rest on measurements.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from bench.cli import (
    Parser,
    csv_list,
    load_model,
    main,
    model_arguments,
    nonneg_int,
    output_args,
    parse_loads,
    run_folder,
    stream_arguments,
    stream_table,
)
from hetero.backends import registry
from hetero.errors import HeteroError
from hetero.memory import check_fits, simulation_bytes
from hetero.results import metadata, write_metadata, write_rows
from hetero.scheduler.policies import ORDER
from hetero.scheduler.tasks import task_count


def parser() -> Parser:
    p = Parser(
        prog="python -m bench.simulate",
        description=__doc__.split("\n\n")[0],
        formatter_class=lambda prog: argparse.RawDescriptionHelpFormatter(prog, width=110),
        epilog=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument(
        "--mix",
        action="append",
        default=[],
        help="devices with counts, e.g. 8xh100,4xu250,1xcpu (repeatable: one row set per mix)",
    )
    p.add_argument(
        "--tasks",
        action="append",
        default=[],
        help="mixed[:N], models[:N], transformer[:layers], gan[:batches] (repeatable; default mixed:1000)",
    )
    p.add_argument("--policy", default="dmda", help=f"comma list of {', '.join(ORDER)}, or all (default dmda)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="task draw / random policy seed (default 0)")
    model_arguments(p)
    stream_arguments(p)
    p.add_argument(
        "--replay",
        default=None,
        metavar="RUN_DIR",
        help="simulate a bench.schedule run folder again and compare makespans (writes replay.csv "
        "in a new run folder under --out, default replay-<date>-<time>; the run read is left as is)",
    )
    p.add_argument("--force", action="store_true", help="simulate sizes estimated not to fit in available memory")
    output_args(p, "simulate-<date>-<time>")
    return p


def _policies(text: str) -> list[str]:
    from hetero.scheduler import policies

    names = ORDER if text == "all" else csv_list(text)
    for n in names:
        policies.make(n)
    return names


def _simulate(args, note) -> int:
    from hetero.scheduler import experiment, profiles, tasks

    if not args.mix:
        raise HeteroError("give at least one --mix (e.g. --mix 8xh100,4xu250,1xcpu) or --replay RUN_DIR")
    mixes = [(m, profiles.parse_mix(m)) for m in args.mix]
    n, devices = max(map(task_count, args.tasks or ["mixed:1000"])), max(sum(c for c, _ in m) for _, m in mixes)
    check_fits(f"simulating {n} tasks on {devices} devices", simulation_bytes(n, devices), args.force)
    pols = _policies(args.policy)
    sets = [tasks.make(s, seed=args.seed, inputs=False) for s in (args.tasks or ["mixed:1000"])]
    model = load_model(args, note)
    rows, sources = [], {}
    for text, mix in mixes:
        states, pmodel, profs = profiles.build(mix, model)
        sources.update({pr.kind: pr.source for pr in profs})
        rows += experiment.simulated(text, mix, states, pmodel, profs, sets, pols, args.seed, note)
    folder = args.run_folder.create()
    write_rows(folder / "simulate.csv", rows, experiment.SIM_COLUMNS)
    meta = metadata({k: {"profile": v} for k, v in sources.items()}, plugins=registry.plugin_sources())
    write_metadata(folder / "meta.json", meta)
    folder = args.run_folder.commit()
    print(_table(rows))
    print("\nall times modeled by simulation; profiles: " + "; ".join(f"{k}: {v}" for k, v in sources.items()))
    print(f"wrote {folder / 'simulate.csv'} ({len(rows)} rows) and {folder / 'meta.json'}")
    return 0


def _requests(args, spec: str) -> int:
    """Requests in a stream: --requests, else the --tasks count ('mixed:300'), else 200."""
    count = spec.partition(":")[2]
    return args.requests or (int(count) if count.isdigit() else 200)


def _stream(args, note) -> int:
    """Streams of requests on each mix, per load and policy: latency percentiles (stream.csv; modeled)."""
    from hetero.scheduler import profiles, streams

    if not args.mix:
        raise HeteroError("give at least one --mix (e.g. --mix 8xh100,4xu250,1xcpu) with --arrivals")
    units = [(spec, _requests(args, spec)) for spec in args.tasks or ["mixed"]]
    n = max(task_count(f"{spec.partition(':')[0]}:{k}") for spec, k in units)
    devices = max(sum(c for c, _ in profiles.parse_mix(m)) for m in args.mix)
    check_fits(f"simulating {n} tasks on {devices} devices", simulation_bytes(n, devices), args.force)
    loads = parse_loads(args.load)
    pols = _policies(args.policy)
    model = load_model(args, note)
    rows, sources = [], {}
    for text in args.mix:
        states, pmodel, profs = profiles.build(profiles.parse_mix(text), model)
        sources.update({pr.kind: pr.source for pr in profs})
        for spec, n in units:
            rows += streams.simulated(
                spec.partition(":")[0],
                n,
                text,
                states,
                pmodel,
                pols,
                loads,
                args.arrivals,
                args.seed,
                args.slo,
                note=note,
            )
    folder = args.run_folder.create()
    write_rows(folder / "stream.csv", rows, streams.COLUMNS)
    meta = metadata({k: {"profile": v} for k, v in sources.items()}, plugins=registry.plugin_sources())
    write_metadata(folder / "meta.json", meta)
    folder = args.run_folder.commit()
    print(stream_table(rows, args.slo))
    print(f"\nall times modeled by simulation; wrote {folder / 'stream.csv'} ({len(rows)} rows)")
    return 0


def _table(rows) -> str:
    lines = [
        f"{'mix':28s} {'taskset':14s} {'policy':12s} {'makespan s':>11s} {'tasks/s':>10s} {'GFLOP/s':>10s} "
        f"{'vs rr':>6s} {'gap':>5s} {'sim s':>6s}  utilization"
    ]
    for r in rows:
        rr = f"{r['speedup_vs_round_robin']:.2f}" if r["speedup_vs_round_robin"] else "-"
        gap = f"{r['gap']:.2f}" if r["gap"] else "-"
        lines.append(
            f"{r['mix'][:28]:28s} {r['taskset']:14s} {r['policy']:12s} {r['makespan_s']:11.4g} "
            f"{r['tasks_per_s']:10.4g} {r['gflops']:10.4g} {rr:>6s} {gap:>5s} {r['sim_wall_s']:6.2f}  "
            f"{r['utilization']}"
        )
    return "\n".join(lines)


def _replay(args, note) -> int:
    """Each row of a bench.schedule run simulated again with that run's own mean durations (and arrivals, for a
    stream run): replay.csv in a new run folder."""
    from hetero.scheduler import replay

    run = Path(args.replay)
    stream = not (run / "schedule.csv").exists() and (run / "stream.csv").exists()
    rows = replay.replay_stream_run(run) if stream else replay.replay_run(run)
    folder = args.run_folder.create()  # never the run read: it stays as it was
    write_rows(folder / "replay.csv", rows, replay.STREAM_COLUMNS if stream else replay.COLUMNS)
    write_metadata(folder / "meta.json", metadata({}, plugins=registry.plugin_sources()) | {"replay_of": str(run)})
    folder = args.run_folder.commit()
    print(_stream_replay_table(rows) if stream else _replay_table(rows))
    print(f"wrote {folder / 'replay.csv'}")
    return 0


def _replay_table(rows) -> str:
    lines = [f"{'taskset':14s} {'mix':22s} {'policy':12s} {'real s':>8s} {'sim s':>8s} {'error':>7s}"]
    for r in rows:
        lines.append(
            f"{r['taskset']:14s} {r['mix'][:22]:22s} {r['policy']:12s} {r['real_makespan_s']:8.3f} "
            f"{r['sim_makespan_s']:8.3f} {r['error_pct']:+6.1f}%" + ("" if r["same_policy"] else "  *")
        )
    same = [r for r in rows if r["same_policy"]]
    worst = max(abs(r["error_pct"]) for r in same) if same else math.nan
    lines.append(f"\nworst |error| {worst:.1f}% over {len(same)} runs (real: measured; sim: modeled)")
    if len(same) < len(rows):
        lines.append(
            f"* {len(rows) - len(same)} runs predate a revision of their policy (Policy.revised): the "
            "simulator ran today's rule, not the one measured, so their error is not the simulator's"
        )
    return "\n".join(lines)


def _stream_replay_table(rows) -> str:
    lines = [f"{'taskset':14s} {'mix':22s} {'policy':12s} {'load':>5s} {'real p99':>9s} {'sim p99':>9s} {'error':>7s}"]
    for r in rows:
        lines.append(
            f"{r['taskset']:14s} {r['mix'][:22]:22s} {r['policy']:12s} {r['load']:5.2f} "
            f"{r['real_p99_s']:9.4g} {r['sim_p99_s']:9.4g} {r['p99_err_pct']:+6.1f}%"
        )
    worst = max((abs(r["p99_err_pct"]) for r in rows), default=math.nan)
    lines.append(f"\nworst |p99 error| {worst:.1f}% over {len(rows)} rows (real: measured; sim: modeled)")
    return "\n".join(lines)


def _run(argv=None) -> int:
    args = parser().parse_args(argv)
    args.run_folder = run_folder(args, "replay-%Y%m%d-%H%M%S" if args.replay else "simulate-%Y%m%d-%H%M%S")
    note = lambda m: print(m, file=sys.stderr)  # noqa: E731
    if args.replay:
        return _replay(args, note)
    return _stream(args, note) if args.arrivals else _simulate(args, note)


def cli(argv=None) -> int:
    return main(_run, argv, prog="bench.simulate")


if __name__ == "__main__":
    sys.exit(cli())
