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
import datetime as dt
import json
import math
import re
import sys
from collections import Counter
from pathlib import Path

from bench.cli import Parser, csv_list, main, nonneg_int
from hetero.errors import HeteroError
from hetero.memory import check_fits, simulation_bytes, task_count
from hetero.results import metadata, write_metadata, write_rows

ORDER = ["single", "round-robin", "random", "eager", "heft", "heteroprio", "dmda"]
COLUMNS = ["mix", "taskset", "policy", "devices", "tasks", "makespan_s", "tasks_per_s", "gflops",
           "speedup_vs_round_robin", "bound_s", "gap", "sim_wall_s", "utilization", "task_counts", "timing",
           "profiles"]
REPLAY_COLUMNS = ["run", "taskset", "mix", "policy", "real_makespan_s", "sim_makespan_s", "error_pct", "same_policy",
                  "timing"]


def parser() -> Parser:
    p = Parser(prog="python -m bench.simulate", description=__doc__.split("\n\n")[0],
               formatter_class=lambda prog: argparse.RawDescriptionHelpFormatter(prog, width=110),
               epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--mix", action="append", default=[],
                   help="devices with counts, e.g. 8xh100,4xu250,1xcpu (repeatable: one row set per mix)")
    p.add_argument("--tasks", action="append", default=[],
                   help="mixed[:N], transformer[:layers], gan[:batches] (repeatable; default mixed:1000)")
    p.add_argument("--policy", default="dmda", help=f"comma list of {', '.join(ORDER)}, or all (default dmda)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="task draw / random policy seed (default 0)")
    p.add_argument("--model", default=None, help="perf model file (default ~/.cache/hetero/perfmodel.json)")
    p.add_argument("--from-results", default="results", help="ingest <dir>/*/bench.csv into the model "
                                                             "(default results; '' to skip)")
    p.add_argument("--replay", default=None, metavar="RUN_DIR",
                   help="simulate a bench.schedule run folder again and compare makespans (writes replay.csv)")
    p.add_argument("--force", action="store_true", help="simulate sizes estimated not to fit in available memory")
    p.add_argument("--out", default="results", help="folder for result files (default results/)")
    p.add_argument("--name", default=None, help="run folder under --out (default simulate-<date>-<time>)")
    return p


def _policies(text: str) -> list[str]:
    from hetero.scheduler import policies

    names = ORDER if text == "all" else csv_list(text)
    for n in names:
        policies.make(n)
    return names


def _load_model(args, note):
    from hetero.scheduler.perfmodel import PerfModel

    model = PerfModel.load(Path(args.model) if args.model else None, warn=note)
    if args.from_results:
        model.ingest_results(args.from_results, warn=note)
    return model


def _bound(tasks, states, profs, mix, model) -> float:
    """max(LP area bound over pools of identical devices, critical path at each task's best device)."""
    from hetero.scheduler import report

    kinds = Counter(t.case for t in tasks)
    pools = [(count, {k: (v if (v := model.predict(pr.backend, pr.device, k)) is not None else math.inf)
                      for k in kinds}) for (count, _), pr in zip(mix, profs)]
    area = report.area_bound(kinds, pools)
    if not any(t.deps for t in tasks):
        return max(area, max(min(times[k] for _, times in pools) for k in kinds))
    return max(area, report.critical_path(tasks, states, report.time_table(tasks, states, model)))


def _simulate(args, note) -> int:
    from hetero.scheduler import policies, profiles, tasks
    from hetero.scheduler.simulate import simulate

    if not args.mix:
        raise HeteroError("give at least one --mix (e.g. --mix 8xh100,4xu250,1xcpu) or --replay RUN_DIR")
    mixes = [(m, profiles.parse_mix(m)) for m in args.mix]
    n, devices = max(map(task_count, args.tasks or ["mixed:1000"])), max(sum(c for c, _ in m) for _, m in mixes)
    check_fits(f"simulating {n} tasks on {devices} devices", simulation_bytes(n, devices), args.force)
    pols = _policies(args.policy)
    sets = [tasks.make(s, seed=args.seed, inputs=False) for s in (args.tasks or ["mixed:1000"])]
    model = _load_model(args, note)
    rows, sources = [], {}
    for text, mix in mixes:
        states, pmodel, profs = profiles.build(mix, model)
        sources.update({pr.kind: pr.source for pr in profs})
        timing = "modeled (measured profiles)" if all(pr.measured for pr in profs) else "modeled"
        for ts in sets:
            bound = _bound(ts.tasks, states, profs, mix, pmodel)
            flops = sum(t.flops for t in ts.tasks)
            runs = {}
            for name in pols:
                pol = policies.make(name, args.seed)
                if pol.max_sim_tasks and len(ts.tasks) > pol.max_sim_tasks:
                    note(f"{text} {ts.name} {name}: skipped; it looks at every ready task for each free device, "
                         f"too slow to simulate past {pol.max_sim_tasks} tasks")
                    continue
                r = runs[name] = simulate(ts.tasks, states, pol, pmodel)
                note(f"{text} {ts.name} {name}: makespan {r.makespan:.4g} s, simulated in {r.wall_s:.2f} s")
                rows.append(dict(
                    mix=text, taskset=ts.name, policy=name, devices=len(states), tasks=len(ts.tasks),
                    makespan_s=r.makespan, tasks_per_s=len(ts.tasks) / r.makespan, gflops=flops / r.makespan / 1e9,
                    speedup_vs_round_robin=None, bound_s=bound, gap=r.makespan / bound if bound > 0 else None,
                    sim_wall_s=r.wall_s, utilization=_per_kind(mix, states, r.busy, r.makespan, mean=True),
                    task_counts=_per_kind(mix, states, r.counts()), timing=timing,
                    profiles="; ".join(f"{pr.kind}: {pr.source}" for pr in profs)))
            rr = runs.get("round-robin")
            for row in rows[len(rows) - len(runs):]:
                row["speedup_vs_round_robin"] = rr.makespan / row["makespan_s"] if rr else None
    folder = Path(args.out) / (args.name or dt.datetime.now().strftime("simulate-%Y%m%d-%H%M%S"))
    write_rows(folder / "simulate.csv", rows, COLUMNS)
    write_metadata(folder / "meta.json", metadata({k: {"profile": v} for k, v in sources.items()}))
    print(_table(rows))
    print("\nall times modeled by simulation; profiles: " + "; ".join(f"{k}: {v}" for k, v in sources.items()))
    print(f"wrote {folder / 'simulate.csv'} ({len(rows)} rows) and {folder / 'meta.json'}")
    return 0


def _per_kind(mix, states, values, makespan=None, mean=False) -> str:
    """'h100=0.93;u250=0.71' (mean utilisation per kind) or 'h100=80;u250=20' (task counts per kind)."""
    out, i = [], 0
    for count, kind in mix:
        vals = [values.get(s.name, 0) for s in states[i:i + count]]
        i += count
        out.append(f"{kind}={sum(vals) / count / makespan:.2f}" if mean else f"{kind}={sum(vals)}")
    return ";".join(out)


def _table(rows) -> str:
    lines = [f"{'mix':28s} {'taskset':14s} {'policy':12s} {'makespan s':>11s} {'tasks/s':>10s} {'GFLOP/s':>10s} "
             f"{'vs rr':>6s} {'gap':>5s} {'sim s':>6s}  utilization"]
    for r in rows:
        rr = f"{r['speedup_vs_round_robin']:.2f}" if r["speedup_vs_round_robin"] else "-"
        gap = f"{r['gap']:.2f}" if r["gap"] else "-"
        lines.append(f"{r['mix'][:28]:28s} {r['taskset']:14s} {r['policy']:12s} {r['makespan_s']:11.4g} "
                     f"{r['tasks_per_s']:10.4g} {r['gflops']:10.4g} {rr:>6s} {gap:>5s} {r['sim_wall_s']:6.2f}  "
                     f"{r['utilization']}")
    return "\n".join(lines)


def _replay(args, note) -> int:
    """Each (task set, policy) of a bench.schedule run simulated again with that run's own mean durations."""
    import pandas as pd

    from hetero.scheduler import policies, report, tasks
    from hetero.scheduler.policies import DeviceState
    from hetero.scheduler.simulate import call_overhead, notify_latency, replay

    run = Path(args.replay)
    try:
        meta = json.loads((run / "meta.json").read_text())
        table = pd.read_csv(run / "schedule.csv", keep_default_na=False, na_values=[""])
        devices = meta["devices"]
    except FileNotFoundError as exc:
        raise HeteroError(f"--replay {run}: not a bench.schedule run folder ({Path(exc.filename).name} missing)") \
            from None
    except (ValueError, KeyError, TypeError) as exc:
        raise HeteroError(f"--replay {run}: corrupt run files: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    runs = report.read_trace(run / "trace.json")
    argv = meta.get("command", "").split()[1:]
    seed = int(re.search(r"--seed[ =](\d+)", " ".join(argv)).group(1)) if "--seed" in argv else 0
    size = "quick" if re.search(r"--size[ =]quick", " ".join(argv)) else "full"
    states = [DeviceState(name, info.get("backend", name.split("@")[0]), name,
                          info.get("transfer_latency_s", 0.0), info.get("transfer_bandwidth_Bps", math.inf),
                          frozenset(info["supports"])) for name, info in devices.items()]
    shared = _shared_cores(devices)
    for s in states:
        s.share = shared.get(s.name)
    rows = []
    for r in table.to_dict("records"):
        ts = tasks.make(r["taskset"], seed=seed, size=size, inputs=False)
        mix = r.get("mix") or "-"                     # runs before --mixes: every device, mix '-'
        here = [s for s in states if mix == "-" or s.backend in mix.split("+")]
        # this run's own durations; kinds it never put on a device: the set's other runs, this mix's first
        own = runs.get((r["taskset"], r["policy"], mix), [])
        others = [evs for (name, pol, m), evs in sorted(runs.items(), key=lambda kv: kv[0][2] != mix)
                  if name == r["taskset"] and (pol, m) != (r["policy"], mix)]
        overhead = call_overhead([evs for (_, _, m), evs in runs.items() if m == mix])
        notify = notify_latency([evs for (name, _, m), evs in runs.items() if name == r["taskset"] and m == mix],
                                ts.tasks)
        policy = policies.make(r["policy"], seed)
        sim = replay(ts.tasks, here, policy, own, others, overhead, notify,
                     {s.name: s.share for s in here if s.share is not None})
        err = 100 * (sim.makespan - r["makespan_s"]) / r["makespan_s"]
        rows.append(dict(run=run.name, taskset=r["taskset"], mix=mix, policy=r["policy"], real_makespan_s=r["makespan_s"],
                         sim_makespan_s=sim.makespan, error_pct=err, same_policy=_same_policy(policy, meta),
                         timing="real: measured wall clock; sim: modeled from the run's mean durations, "
                                "per-task overhead, completion notice and core sharing"))
    write_rows(run / "replay.csv", rows, REPLAY_COLUMNS)
    print(f"{'taskset':14s} {'mix':22s} {'policy':12s} {'real s':>8s} {'sim s':>8s} {'error':>7s}")
    for r in rows:
        print(f"{r['taskset']:14s} {r['mix'][:22]:22s} {r['policy']:12s} {r['real_makespan_s']:8.3f} {r['sim_makespan_s']:8.3f} "
              f"{r['error_pct']:+6.1f}%" + ("" if r["same_policy"] else "  *"))
    same = [r for r in rows if r["same_policy"]]
    worst = max(abs(r["error_pct"]) for r in same) if same else math.nan
    print(f"\nworst |error| {worst:.1f}% over {len(same)} runs; wrote {run / 'replay.csv'}")
    if len(same) < len(rows):
        print(f"* {len(rows) - len(same)} runs predate a revision of their policy (Policy.revised): the simulator ran "
              "today's rule, not the one measured, so their error is not the simulator's")
    return 0


def _same_policy(policy, meta: dict) -> bool:
    """Whether the run was made with the placement rule the simulator runs now (after policy.revised)."""
    from datetime import datetime

    if policy.revised is None:
        return True
    try:
        return datetime.fromisoformat(meta["date"]) >= datetime.fromisoformat(policy.revised)
    except (KeyError, TypeError, ValueError):
        return False


def _shared_cores(devices: dict) -> dict:
    """device name -> (node, cores) for the run's devices pinned to the cores of another (bench.schedule
    --share-cores gives each such device one core); a multi-node run's names end in @<node>."""
    where = {n: (n.partition("@")[2], tuple(sorted(i.get("cpus") or ()))) for n, i in devices.items()}
    return {n: w for n, w in where.items() if w[1] and sum(v == w for v in where.values()) > 1}


def _run(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.name and not re.fullmatch(r"[A-Za-z0-9._-]+", args.name):
        raise HeteroError(f"--name {args.name!r} may hold only letters, digits, '.', '_' and '-'")
    note = lambda m: print(m, file=sys.stderr)  # noqa: E731
    return _replay(args, note) if args.replay else _simulate(args, note)


def cli(argv=None) -> int:
    return main(_run, argv, prog="bench.simulate")


if __name__ == "__main__":
    sys.exit(cli())
