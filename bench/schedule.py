"""python -m bench.schedule: place tasks on several devices by measured throughput and compare policies.

    python -m bench.schedule --devices numba,opencl,fpga-emu --policy all --tasks mixed
    python -m bench.schedule --devices numba,opencl --policy dmda,round-robin --tasks transformer:4 --tasks gan
    python -m bench.schedule --mixes "numba;opencl;numba+opencl;numba+opencl+fpga-emu" --share-cores --tasks mixed
    python -m bench.schedule calibrate --devices numba,opencl --tasks mixed     # fill the perf model first
    RAY_ADDRESS=head:6379 python -m bench.schedule ...                          # every node's devices
"""
from __future__ import annotations

import datetime as dt
import re
import statistics
import sys
from pathlib import Path

from bench.cli import Parser, csv_list, main, nonneg_int, positive_int
from hetero.backends import registry
from hetero.errors import HeteroError, choices
from hetero.results import metadata, write_metadata, write_rows, atomic_write

ORDER = ["single", "round-robin", "random", "eager", "heft", "heteroprio", "dmda"]


def parser() -> Parser:
    p = Parser(prog="python -m bench.schedule", description=__doc__.split("\n\n")[0],
               formatter_class=lambda prog: __import__("argparse").RawDescriptionHelpFormatter(prog, width=110),
               epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("command", nargs="?", default="run", help="run (default) or calibrate")
    p.add_argument("--devices", default=None, help="comma list of backends, e.g. numba,opencl,fpga-emu")
    p.add_argument("--mixes", default=None,
                   help="';'-separated device mixes, '+' inside one, e.g. 'numba;opencl;numba+opencl': every task "
                        "set runs on each mix in turn (the same pinned devices throughout)")
    p.add_argument("--policy", default="all", help=f"comma list of {', '.join(ORDER)}, or all (default)")
    p.add_argument("--tasks", action="append", default=[],
                   help="mixed[:N], transformer[:layers], gan[:batches] (repeatable; default mixed:40)")
    p.add_argument("--size", default="full", help="full (default) or quick (tiny shapes, for tests)")
    p.add_argument("--check", default="sample", help="all | sample (default: 8 tasks per run) | none")
    p.add_argument("--model", default=None, help="perf model file (default ~/.cache/hetero/perfmodel.json)")
    p.add_argument("--from-results", default="results", help="ingest <dir>/*/bench.csv into the model "
                                                             "(default results; '' to skip)")
    p.add_argument("--reps", type=positive_int, default=3, help="calibration runs per task kind and device (default 3)")
    p.add_argument("--repeat", type=positive_int, default=1,
                   help="runs of each policy per task set and mix, in interleaved rounds (every policy once per "
                        "round, so a slow spell of the machine hits them alike); the row is the median-makespan "
                        "run and says the spread, and the median and range of the runs' own gaps (default 1)")
    p.add_argument("--address", default=None, help="join this Ray cluster (default: env RAY_ADDRESS, else local)")
    p.add_argument("--share-cores", action="store_true", help="let CPU-backed devices share cores")
    p.add_argument("--strict", action="store_true", help="an unavailable device is an error")
    p.add_argument("--seed", type=nonneg_int, default=0, help="task draw / random policy seed (default 0)")
    p.add_argument("--out", default="results", help="folder for result files (default results/)")
    p.add_argument("--name", default=None, help="run folder under --out (default schedule-<date>-<time>)")
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
    if args.size not in ("full", "quick"):
        raise choices("--size", args.size, ["full", "quick"])
    if args.name and not re.fullmatch(r"[A-Za-z0-9._-]+", args.name):
        raise HeteroError(f"--name {args.name!r} may hold only letters, digits, '.', '_' and '-'")
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
    from hetero.scheduler import actors, policies, report, runtime, tasks
    from hetero.scheduler.perfmodel import PerfModel

    args = parser().parse_args(argv)
    devs, pols = _validate(args)
    note = lambda m: print(m, file=sys.stderr)  # noqa: E731
    model = PerfModel.load(Path(args.model) if args.model else None, warn=note)
    if args.from_results:
        model.ingest_results(args.from_results, warn=note)
    sets = [tasks.make(s, seed=args.seed, size=args.size) for s in args.tasks]
    runtime.connect(args.address, resources={r: 1 for d, r in actors.RESOURCE.items() if d in devs})
    devices, notes = runtime.start_devices(devs, args.share_cores, args.strict, warn=note)
    for n in notes:
        note(n)
    states = [d.state for d in devices]
    note("devices: " + "; ".join(f"{d.state.name} = {d.info['device']} cpus {d.info['cpus']} runs "
                                 f"{','.join(d.info['supports'])}" for d in devices))
    try:
        if args.command == "calibrate":
            for ts in sets:
                n = runtime.calibrate(ts, devices, model, reps=args.reps)
                note(f"calibrated {ts.name}: {n} runs")
            print(f"wrote {model.save()}")
            return 0
        folder = Path(args.out) / (args.name or dt.datetime.now().strftime("schedule-%Y%m%d-%H%M%S"))
        meta = metadata({d.state.name: d.info | {"backend": d.state.backend, "transfer_latency_s": d.state.latency,
                                                 "transfer_bandwidth_Bps": d.state.bandwidth} for d in devices})
        write_metadata(folder / "meta.json", meta)
        rows, results, bad = [], [], 0
        mixes = args.mix_list or [[d.state.backend for d in devices]]
        for ts in sets:
            n = runtime.calibrate(ts, devices, model, reps=args.reps, missing_only=True)
            if n:
                note(f"calibrated {ts.name}: {n} runs of kinds the model had not seen")
            model.save()
            for mix in mixes:
                here = [d for d in devices if d.state.backend in mix]
                label = "+".join(mix)
                if not all(any(s.runs(t) for s in (d.state for d in here)) for t in ts.tasks):
                    note(f"note: mix {label} cannot run every task of {ts.name} here; skipped")
                    continue
                every: dict = {name: [] for name in pols}
                for k in range(args.repeat):
                    for name in pols:
                        r = runtime.execute(ts, here, policies.make(name, args.seed), model, args.check,
                                            seed=args.seed)
                        r.mix = label
                        every[name].append(r)
                        model.save()
                        note(f"{ts.name} [{label}] {name}" + (f" ({k + 1}/{args.repeat})" if args.repeat > 1 else "")
                             + f": {r.makespan:.3f} s, {r.retries} retries, {r.checked} checked"
                             + (f", WRONG: {'; '.join(r.wrong)}" if r.wrong else ""))
                        bad += len(r.wrong)
                runs = [sorted(rs, key=lambda r: r.makespan)[(len(rs) - 1) // 2] for rs in every.values()]
                shared = actors.sharing([d.placement for d in here])   # this mix's devices, not the whole plan
                states = [d.state for d in here]
                mine = report.summarize(runs, states, model, [shared] if shared else [])
                for row, rs in zip(mine, every.values()):
                    # each run's gap against its own bound: the machine's noise moves both, run by run
                    gaps = sorted(g for r in rs if (g := report.summarize([r], states, model)[0]["gap"]) is not None)
                    row.update(repeats=len(rs), makespan_min_s=min(r.makespan for r in rs),
                               makespan_max_s=max(r.makespan for r in rs),
                               gap_median=statistics.median(gaps) if gaps else None,
                               gap_min=gaps[0] if gaps else None, gap_max=gaps[-1] if gaps else None)
                rows += mine
                results += runs
            write_rows(folder / "schedule.csv", rows, report.COLUMNS)
            atomic_write(folder / "trace.json", report.chrome_trace(results))
        write_metadata(folder / "meta.json", meta | {"complete": True, "model": str(model.path)})
        print(report.format_rows(rows))
        print(f"\nwrote {folder / 'schedule.csv'} ({len(rows)} rows), {folder / 'trace.json'} and "
              f"{folder / 'meta.json'}; model {model.path}")
        return 1 if bad else 0
    finally:
        runtime.stop_devices(devices)


def cli(argv=None) -> int:
    return main(_run, argv, prog="bench.schedule")


if __name__ == "__main__":
    sys.exit(cli())
