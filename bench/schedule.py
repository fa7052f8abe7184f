"""python -m bench.schedule: place tasks on several devices by measured throughput and compare policies.

python -m bench.schedule --devices numba,opencl,fpga-emu --policy all --tasks mixed
python -m bench.schedule --devices numba,opencl --policy dmda,round-robin --tasks transformer:4 --tasks gan
python -m bench.schedule --mixes "numba;opencl;numba+opencl;numba+opencl+fpga-emu" --share-cores --tasks mixed
python -m bench.schedule calibrate --devices numba,opencl --tasks mixed     # fill the perf model first
RAY_ADDRESS=head:6379 python -m bench.schedule ...                          # every node's devices
"""

from __future__ import annotations

import sys

from bench.cli import (
    Parser,
    csv_list,
    load_model,
    main,
    model_arguments,
    nonneg_int,
    output_args,
    parse_loads,
    positive_int,
    run_folder,
    stream_arguments,
    stream_table,
)
from hetero.backends import registry
from hetero.errors import HeteroError, choices
from hetero.results import atomic_write, metadata, write_metadata, write_rows
from hetero.scheduler.policies import ORDER


def parser() -> Parser:
    p = Parser(
        prog="python -m bench.schedule",
        description=__doc__.split("\n\n")[0],
        formatter_class=lambda prog: __import__("argparse").RawDescriptionHelpFormatter(prog, width=110),
        epilog=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument("command", nargs="?", default="run", help="run (default) or calibrate")
    p.add_argument("--devices", default=None, help="comma list of backends, e.g. numba,opencl,fpga-emu")
    p.add_argument(
        "--mixes",
        default=None,
        help="';'-separated device mixes, '+' inside one, e.g. 'numba;opencl;numba+opencl': every task "
        "set runs on each mix in turn (the same pinned devices throughout)",
    )
    p.add_argument("--policy", default="all", help=f"comma list of {', '.join(ORDER)}, or all (default)")
    p.add_argument(
        "--tasks",
        action="append",
        default=[],
        help="mixed[:N], models[:N], transformer[:layers], gan[:batches] (repeatable; default mixed:40)",
    )
    p.add_argument("--size", default="full", help="full (default) or quick (tiny shapes, for tests)")
    p.add_argument("--check", default="sample", help="all | sample (default: 8 tasks per run) | none")
    model_arguments(p)
    p.add_argument("--reps", type=positive_int, default=3, help="calibration runs per task kind and device (default 3)")
    p.add_argument(
        "--repeat",
        type=positive_int,
        default=1,
        help="runs of each policy per task set and mix, in interleaved rounds (every policy once per "
        "round, so a slow spell of the machine hits them alike); the row is the median-makespan "
        "run and says the spread, and the median and range of the runs' own gaps (default 1)",
    )
    p.add_argument(
        "--cold",
        action="store_true",
        help="every run starts from the perf model as calibration left it, learning nothing from the other "
        "runs: the first run a new user gets (with a deleted --model, the kinds' short calibration and "
        "--from-results' kernel medians are all it knows); with --repeat, the median of such first runs",
    )
    p.add_argument("--address", default=None, help="join this Ray cluster (default: env RAY_ADDRESS, else local)")
    p.add_argument("--share-cores", action="store_true", help="let CPU-backed devices share cores")
    p.add_argument("--strict", action="store_true", help="an unavailable device is an error")
    p.add_argument("--seed", type=nonneg_int, default=0, help="task draw / random policy seed (default 0)")
    stream_arguments(p)
    output_args(p, "schedule-<date>-<time>")
    return p


def _validate(args) -> tuple[list[str], list[str]]:
    from hetero.scheduler import policies, tasks

    if args.command not in ("run", "calibrate"):
        raise choices("command", args.command, ["run", "calibrate"])
    known = registry.names(include_hidden=True)
    if not (args.devices or args.mixes):
        raise HeteroError("give --devices (e.g. numba,opencl) or --mixes (e.g. 'numba;opencl;numba+opencl')")
    args.mix_list = [m for m in (csv_list(t.replace("+", ",")) for t in (args.mixes or "").split(";")) if m]
    if args.mixes and not args.mix_list:
        raise HeteroError(f"--mixes {args.mixes!r} names no device; e.g. 'numba;opencl;numba+opencl'")
    devs = csv_list(args.devices) if args.devices else list(dict.fromkeys(d for m in args.mix_list for d in m))
    for d in devs:
        if d not in known:
            raise choices("device", d, registry.names())
    pols = ORDER if args.policy == "all" else csv_list(args.policy)
    for p in pols:
        policies.make(p)
    args.tasks = args.tasks or ["mixed:40"]
    for spec in args.tasks:
        name = spec.partition(":")[0]
        if name not in tasks.SETS:
            raise choices("task set", name, list(tasks.SETS))
    if args.check not in ("all", "sample", "none"):
        raise choices("--check", args.check, ["all", "sample", "none"])
    for flag, value in (("--reps", args.reps), ("--repeat", args.repeat)):
        if value < 1:
            raise HeteroError(f"{flag} {value} must be >= 1")
    if args.cold and args.arrivals:
        raise HeteroError("--cold compares first runs of batches and graphs; drop it or --arrivals")
    if args.size not in ("full", "quick"):
        raise choices("--size", args.size, ["full", "quick"])
    args.run_folder = run_folder(args, "schedule-%Y%m%d-%H%M%S") if args.command == "run" else None
    usable = []
    for d in devs:
        reason = registry.backend_class(d).unavailable()
        if reason is None:
            usable.append(d)
        elif args.strict:
            raise HeteroError(f"device {d!r} unavailable: {reason}")
        else:
            print(f"note: device {d!r} unavailable ({reason}); continuing without it", file=sys.stderr)
    if not usable:
        raise HeteroError("no requested device is available here; see python -m bench.run --list")
    return usable, pols


def _run(argv=None) -> int:
    from hetero.scheduler import actors, runtime, tasks, workers

    args = parser().parse_args(argv)
    devs, pols = _validate(args)
    note = lambda m: print(m, file=sys.stderr)  # noqa: E731
    model = load_model(args, note)
    sets = [tasks.make(s, seed=args.seed, size=args.size) for s in args.tasks]
    workers.connect(args.address, resources={r: 1 for d, r in actors.RESOURCE.items() if d in devs})
    fleet, notes = workers.start_devices(devs, args.share_cores, args.strict, warn=note)
    for n in notes:
        note(n)
    note(
        "devices: "
        + "; ".join(
            f"{w.state.name} = {w.info['device']} cpus {w.info['cpus']} runs {','.join(w.info['supports'])}"
            for w in fleet
        )
    )
    try:
        if args.command == "calibrate":
            for ts in sets:
                n = runtime.calibrate(ts, fleet, model, reps=args.reps, warn=note)
                note(f"calibrated {ts.name}: {n} runs")
            return 0
        if args.arrivals:
            return _measure_stream(args, sets, fleet, pols, model, note)
        return _measure(args, sets, fleet, pols, model, note)
    finally:
        note(f"perf model: {model.save()}")  # whatever was measured, a run cut short included
        workers.stop_devices(fleet)


def _measure(args, sets, workers, pols, model, note) -> int:
    """Every policy on every task set and mix; schedule.csv, trace.json and meta.json in the run folder, each
    written whole after every mix (a run cut short keeps what it finished)."""
    from hetero.scheduler import experiment, runtime, summary, trace

    folder = args.run_folder.create()
    devices = {
        w.state.name: w.info
        | {
            "backend": w.state.backend,
            "transfer_latency_s": w.state.latency,
            "transfer_bandwidth_Bps": w.state.bandwidth,
        }
        for w in workers
    }
    meta = metadata(devices, plugins=registry.plugin_sources())
    write_metadata(folder / "meta.json", meta)
    rows, results, bad = [], [], 0
    for ts in sets:
        n = runtime.calibrate(ts, workers, model, reps=args.reps, missing_only=True, warn=note)
        if n:
            note(f"calibrated {ts.name}: {n} runs of kinds the model held no task samples for")
        model.save()
        for mix in args.mix_list or [[w.state.backend for w in workers]]:
            here = [w for w in workers if w.state.backend in mix]
            label = "+".join(mix)
            if not all(any(w.state.runs(t) for w in here) for t in ts.tasks):
                note(f"note: mix {label} cannot run every task of {ts.name} here; skipped")
                continue
            mine, runs, wrong = experiment.compare(
                ts, here, pols, model, args.repeat, args.check, args.seed, label, note, args.cold
            )
            bad, rows, results = bad + wrong, rows + mine, results + runs
            write_rows(folder / "schedule.csv", rows, summary.COLUMNS)
            atomic_write(folder / "trace.json", trace.chrome_trace(results))
    write_metadata(folder / "meta.json", meta | {"complete": True, "model": str(model.path)})
    folder = args.run_folder.commit()
    print(summary.format_rows(rows))
    print(
        f"\nwrote {folder / 'schedule.csv'} ({len(rows)} rows), {folder / 'trace.json'} and "
        f"{folder / 'meta.json'}; model {model.path}"
    )
    return 1 if bad else 0


def _measure_stream(args, sets, workers, pols, model, note) -> int:
    """Streams of requests on every mix, per load and policy, placed as they arrive: stream.csv (latency
    percentiles, measured wall clock), trace.json and meta.json in the run folder."""
    from hetero.scheduler import experiment, runtime, streams, trace

    loads = parse_loads(args.load)
    folder = args.run_folder.create()
    devices = {w.state.name: w.info | {"backend": w.state.backend} for w in workers}
    meta = metadata(devices, plugins=registry.plugin_sources())
    write_metadata(folder / "meta.json", meta)
    rows, results = [], []
    for ts in sets:
        runtime.calibrate(ts, workers, model, reps=args.reps, missing_only=True, warn=note)
        name, _, count = ts.name.partition(":")
        n = args.requests or (int(count) if count.isdigit() else 200)
        for mix in args.mix_list or [[w.state.backend for w in workers]]:
            here = [w for w in workers if w.state.backend in mix]
            got, runs = experiment.stream(
                name,
                n,
                here,
                pols,
                model,
                loads,
                args.arrivals,
                args.seed,
                args.slo,
                args.size,
                args.check,
                "+".join(mix),
                note,
                folder,
            )
            rows, results = rows + got, results + runs
            write_rows(folder / "stream.csv", rows, streams.COLUMNS)
            atomic_write(folder / "trace.json", trace.chrome_trace(results))
    write_metadata(folder / "meta.json", meta | {"complete": True, "model": str(model.path)})
    folder = args.run_folder.commit()
    print(stream_table(rows, args.slo))
    print(f"\nwrote {folder / 'stream.csv'} ({len(rows)} rows), {folder / 'trace.json'} and {folder / 'meta.json'}")
    return 1 if any(r.wrong for r in results) else 0


def cli(argv=None) -> int:
    return main(_run, argv, prog="bench.schedule")


if __name__ == "__main__":
    sys.exit(cli())
