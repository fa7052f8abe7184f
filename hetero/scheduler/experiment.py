"""bench.schedule's protocol: every policy run on one task set and device mix, `repeat` times in interleaved
rounds (every policy once a round, so a slow spell of the machine hits them alike); the row of a policy is its
median-makespan run, with the spread of the makespans and the median and range of each run's own gap to its
own bound (the machine's noise moves both, run by run)."""

from __future__ import annotations

import copy
import math
import statistics
from collections import Counter

from hetero.scheduler import actors, bounds, policies, runtime, streams, summary
from hetero.scheduler.simulate import simulate

# bench.simulate's batch rows (simulate.csv); one string, not a one-name-a-line list beside summary.COLUMNS
SIM_COLUMNS = (  # noqa: SIM905
    "mix taskset policy devices tasks makespan_s tasks_per_s gflops speedup_vs_round_robin bound_s gap sim_wall_s "
    "utilization task_counts timing profiles"
).split()


def median_run(runs: list):
    """The run whose makespan is the median (the lower one of the middle two)."""
    return sorted(runs, key=lambda r: r.makespan)[(len(runs) - 1) // 2]


def _chosen(r) -> str:
    """auto's choice for a run, with the simulated makespans it rested on: 'dmda (simulated: dmda <s> s,
    heteroprio <s> s)'."""
    sims = ", ".join(f"{n} {s:.3f} s" for n, s in r.simulated.items())
    return r.placed_by + (f" (simulated: {sims})" if sims else "")


def compare(
    ts,
    workers: list,
    names: list[str],
    model,
    repeat: int = 1,
    check: str = "sample",
    seed: int = 0,
    mix: str = "",
    note=print,
    cold: bool = False,
) -> tuple[list[dict], list, int]:
    """(one summary row per policy, each policy's median run, wrong outputs over all runs). cold: every run
    starts from a copy of `model` as it is now (after calibration), learning into the copy only, so no run
    knows what another measured: each is the first run a new user gets."""
    every: dict = {name: [] for name in names}
    bad = 0
    start = copy.deepcopy(model) if cold else None
    for k in range(repeat):
        for name in names:
            m = copy.deepcopy(start) if cold else model
            r = runtime.execute(ts, workers, policies.make(name, seed), m, check, seed=seed)
            r.mix = mix
            every[name].append(r)
            if not cold:
                model.save()
            note(
                f"{ts.name} [{mix}] {name}"
                + (f" ({k + 1}/{repeat})" if repeat > 1 else "")
                + f": {r.makespan:.3f} s"
                + (f", placed by {_chosen(r)}" if r.placed_by != name else "")
                + f", {r.retries} retries, {r.checked} checked, predictions "
                + ",".join(f"{k}={v}" for k, v in sorted(r.basis.items()))
                + ", device errors "
                + ",".join(f"{k}={v}" for k, v in sorted(r.error_basis.items()))
                + (f", lost {','.join(r.dead)}" if r.dead else "")
                + (f", WRONG: {'; '.join(r.wrong)}" if r.wrong else "")
            )
            bad += len(r.wrong)
    runs = [median_run(rs) for rs in every.values()]
    shared = actors.sharing([w.placement for w in workers])  # this mix's devices, not the whole plan
    states = [w.state for w in workers]
    rows = summary.summarize(runs, states, model, [shared] if shared else [])
    for row, rs in zip(rows, every.values()):
        gaps = sorted(g for r in rs if (g := summary.summarize([r], states, model)[0]["gap"]) is not None)
        row.update(
            repeats=len(rs),
            makespan_min_s=min(r.makespan for r in rs),
            makespan_max_s=max(r.makespan for r in rs),
            gap_median=statistics.median(gaps) if gaps else None,
            gap_min=gaps[0] if gaps else None,
            gap_max=gaps[-1] if gaps else None,
            model_knew="calibration only" if cold else "every earlier run",
            placed_by=summary.placed_by(rs),
        )
    return rows, runs, bad


def stream(
    spec: str,
    n: int,
    workers: list,
    names: list[str],
    model,
    loads: list[float],
    arrivals: str = "poisson",
    seed: int = 0,
    slo: float | None = None,
    size: str = "full",
    check: str = "sample",
    mix: str = "",
    note=print,
    folder=None,
) -> tuple[list[dict], list]:
    """Streams of `n` requests of `spec` run on the Ray devices, each policy placing requests as they arrive, per
    load (a fraction of the capacity the perf model predicts, streams.capacity): (streams.sweep's rows, every
    run; a run's task set is named '<stream>@<load>'). The stream's kinds are calibrated first. folder: where
    each stream's arrival times are kept (replay.arrivals_file), for its replay."""
    from hetero.scheduler.replay import arrivals_file

    states = [w.state for w in workers]
    for s in states:  # the capacity counts each task's per-call overhead, as the queue ends do
        s.overhead = model.call_overhead(s.backend, s.device)
    runs, known = [], {}  # known: the mix's capacity, derived once (before the first load's runs teach the model)

    def make_stream(load):
        calibrate = lambda ts: runtime.calibrate(ts, workers, model, missing_only=True, warn=note)  # noqa: E731
        st, rate = streams.make(
            spec, n, states, model, load, arrivals, seed, size, True, calibrate, known.get("capacity")
        )
        known.setdefault("capacity", rate / load)
        if folder is not None:
            streams.write_trace_file(arrivals_file(folder, st.name, load, mix), st)
        return st, rate

    def run(st, load, name):
        ts = st.taskset()
        ts.name = f"{st.name}@{load:g}"
        r = runtime.execute(ts, workers, policies.make(name, seed), model, check, seed=seed, arrivals=st.arrivals())
        r.mix = mix
        model.save()
        runs.append(r)
        if r.retries or r.wrong:
            note(
                f"{ts.name} [{mix}] {name}: {r.retries} retries" + (f", WRONG: {'; '.join(r.wrong)}" if r.wrong else "")
            )
        start = {e["task"]: e["start"] - r.t0 for e in r.events}
        end = {e["task"]: e["end"] - r.t0 for e in r.events}
        return start, end, dict(timing="measured (wall clock)")

    return streams.sweep(mix, loads, names, make_stream, run, slo, note), runs


def simulated(
    text: str, mix: list, states: list, model, profs: list, sets: list, names: list[str], seed: int = 0, note=print
) -> list[dict]:
    """bench.simulate's rows for one device mix (mix: [(count, kind)], states its devices in that order, profs
    their profiles): every policy on every task set, with the bound, the gap and round-robin's makespan over
    each policy's (every time modeled)."""
    timing = "modeled (measured profiles)" if all(pr.measured for pr in profs) else "modeled"
    rows = []
    for ts in sets:
        bound = _bound(ts.tasks, states, profs, mix, model)
        flops = sum(t.flops for t in ts.tasks)
        runs = {}
        for name in names:
            pol = policies.make(name, seed)
            limit = pol.sim_limit(ts.tasks)
            if limit and len(ts.tasks) > limit:
                note(
                    f"{text} {ts.name} {name}: skipped; it looks at every ready task for each free device, "
                    f"too slow to simulate past {limit} tasks"
                )
                continue
            r = runs[name] = simulate(ts.tasks, states, pol, model)
            note(f"{text} {ts.name} {name}: makespan {r.makespan:.4g} s, simulated in {r.wall_s:.2f} s")
            rows.append(
                dict(
                    mix=text,
                    taskset=ts.name,
                    policy=name,
                    devices=len(states),
                    tasks=len(ts.tasks),
                    makespan_s=r.makespan,
                    tasks_per_s=len(ts.tasks) / r.makespan,
                    gflops=flops / r.makespan / 1e9,
                    speedup_vs_round_robin=None,
                    bound_s=bound,
                    gap=r.makespan / bound if bound > 0 else None,
                    sim_wall_s=r.wall_s,
                    utilization=_per_kind(mix, states, r.busy, r.makespan, mean=True),
                    task_counts=_per_kind(mix, states, r.counts()),
                    timing=timing,
                    profiles="; ".join(f"{pr.kind}: {pr.source}" for pr in profs),
                )
            )
        rr = runs.get("round-robin")
        for row in rows[len(rows) - len(runs) :]:
            row["speedup_vs_round_robin"] = rr.makespan / row["makespan_s"] if rr else None
    return rows


def _bound(tasks, states, profs, mix, model) -> float:
    """max(LP area bound over pools of identical devices, critical path at each task's best device)."""
    kinds = Counter(t.case for t in tasks)
    pools = [
        (count, {k: (v if (v := model.predict(pr.backend, pr.device, k)) is not None else math.inf) for k in kinds})
        for (count, _), pr in zip(mix, profs)
    ]
    area = bounds.area_bound(kinds, pools)
    if not any(t.deps for t in tasks):
        return max(area, max(min(times[k] for _, times in pools) for k in kinds))
    return max(area, bounds.critical_path(tasks, states, bounds.time_table(tasks, states, model)))


def _per_kind(mix, states, values, makespan=None, mean=False) -> str:
    """'h100=0.93;u250=0.71' (mean utilisation per kind) or 'h100=80;u250=20' (task counts per kind)."""
    out, i = [], 0
    for count, kind in mix:
        vals = [values.get(s.name, 0) for s in states[i : i + count]]
        i += count
        out.append(f"{kind}={sum(vals) / count / makespan:.2f}" if mean else f"{kind}={sum(vals)}")
    return ";".join(out)
