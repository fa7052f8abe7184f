"""What a schedule achieved: makespan, throughput, per-device utilisation, the lower bound and the gap to it,
scheduling overhead; and the schedule itself as a Chrome trace (Perfetto opens it).

Lower bound = max(LP area bound, critical path), with each (device, task kind) time the mean measured in that
run, or the perf model's prediction where the run never put that kind on that device:
  LP (unrelated devices, tasks divisible): min T s.t. for each device d: sum_t n[d,t] * time[d,t] <= T,
  for each kind t: sum_d n[d,t] = N_t, n >= 0 (scipy.optimize.linprog; valid for graphs too, ignoring edges);
  and for devices pinned to the same cores (--share-cores, DeviceState.share), which time-slice them:
  sum over the group's devices of sum_t n[d,t] * time[d,t] <= T, their times being the time alone on the cores
  (simulate.solo_seconds: while n of the group's tasks run, each advances at 1/n), as dmda's LP counts them.
  Without that row the bound is one for a machine with a core per device, which the run did not have
  (lp_bound_own_cores_s keeps it, from wall-clock durations: with fpga-emu emulating on numba's core, it lets the
  LP give fpga-emu numba's core a second time);
  critical path: the longest dependency chain, each task at its best device's time.
"""
from __future__ import annotations

import json
import math
from collections import Counter

from hetero.scheduler.lp import area_allocation
from hetero.scheduler.policies import topological
from hetero.scheduler.simulate import solo_seconds

COLUMNS = ["taskset", "mix", "policy", "devices", "tasks", "makespan_s", "tasks_per_s", "gflops", "speedup_vs_single",
           "speedup_vs_round_robin", "lp_bound_s", "lp_bound_own_cores_s", "critical_path_s", "bound_s", "gap",
           "overhead_ms_per_task", "overhead_cpu_ms_per_task", "submit_ms_per_task", "utilization", "task_counts",
           "retries", "checked", "wrong", "shared_cores", "repeats", "makespan_min_s", "makespan_max_s", "gap_median",
           "gap_min", "gap_max"]


def time_table(tasks, states, model) -> dict:
    """(device name, case) -> predicted seconds (inf where the device cannot run it or nothing is known)."""
    out = {}
    for t in tasks:
        for s in states:
            if (s.name, t.case) not in out:
                p = model.predict(s.backend, s.device, t.case) if s.supports is None or \
                    t.case.workload in s.supports else None
                out[(s.name, t.case)] = p if p is not None else math.inf
    return out


def lp_bound(tasks, states, times, shared: bool = True) -> float:
    """The LP area bound; shared=False: as if every device had cores of its own."""
    kinds = Counter(t.case for t in tasks)
    return area_bound(kinds, [(1, {k: times[(s.name, k)] for k in kinds}) for s in states],
                      share_groups(states) if shared else ())


def area_bound(kinds: dict, pools: list[tuple[int, dict]], groups=()) -> float:
    """The LP area bound over pools of identical devices (hetero.scheduler.lp)."""
    return area_allocation(kinds, pools, groups)[0]


def share_groups(states) -> list[tuple[list[int], float]]:
    """area_allocation's groups: the indices of the states pinned to one set of cores, together one device."""
    on: dict = {}
    for i, s in enumerate(states):
        if s.share is not None:
            on.setdefault(s.share, []).append(i)
    return [(members, 1.0) for members in on.values() if len(members) > 1]


def critical_path(tasks, states, times) -> float:
    best = {t.id: min(times[(s.name, t.case)] for s in states) for t in tasks}
    longest: dict = {}
    for t in topological(tasks):
        longest[t.id] = best[t.id] + max((longest[p] for p in t.deps), default=0.0)
    return max(longest.values(), default=0.0)


def summarize(results, states, model, notes=()) -> list[dict]:
    """One row per policy run; bounds from the model as it stands after all runs (the same for every policy)."""
    rows = []
    by_policy = {r.policy: r for r in results}   # one task set on one mix
    for r in results:
        tasks = r.taskset.tasks
        times = time_table(tasks, states, model)
        seen: dict = {}     # this run's own mean durations win over the model's (a bound on *this* run)
        wall: dict = {}     # the same from wall-clock durations, for the bound as if every device had own cores
        case_of = {t.id: t.case for t in tasks}
        cores = {s.name: s.share for s in states if s.share is not None}
        for e, sec in zip(r.events, solo_seconds(r.events, cores)):
            seen.setdefault((e["device"], case_of[e["task"]]), []).append(sec)
            wall.setdefault((e["device"], case_of[e["task"]]), []).append(e["end"] - e["start"])
        own = lp_bound(tasks, states, {**times, **{k: sum(v) / len(v) for k, v in wall.items()}}, shared=False)
        times.update({k: sum(v) / len(v) for k, v in seen.items()})
        lp, cp = lp_bound(tasks, states, times), critical_path(tasks, states, times)
        bound = max(lp, cp)
        busy, count = {}, {}
        for e in r.events:
            busy[e["device"]] = busy.get(e["device"], 0.0) + e["end"] - e["start"]
            count[e["device"]] = count.get(e["device"], 0) + 1
        ms = r.makespan
        flops = sum(t.flops for t in tasks)
        single, rr = by_policy.get("single"), by_policy.get("round-robin")
        rows.append(dict(
            taskset=r.taskset.name, mix=r.mix or "+".join(s.name for s in states), policy=r.policy,
            devices=",".join(s.name for s in states), tasks=len(tasks),
            makespan_s=ms, tasks_per_s=len(tasks) / ms, gflops=flops / ms / 1e9,
            speedup_vs_single=single.makespan / ms if single else None,
            speedup_vs_round_robin=rr.makespan / ms if rr else None,
            lp_bound_s=lp, lp_bound_own_cores_s=own, critical_path_s=cp, bound_s=bound,
            gap=ms / bound if bound > 0 else None,
            overhead_ms_per_task=1e3 * r.overhead_s / len(tasks),
            overhead_cpu_ms_per_task=1e3 * r.overhead_cpu_s / len(tasks),
            submit_ms_per_task=1e3 * r.submit_s / len(tasks),
            utilization=";".join(f"{s.name}={busy.get(s.name, 0.0) / ms:.2f}" for s in states),
            task_counts=";".join(f"{s.name}={count.get(s.name, 0)}" for s in states),
            retries=r.retries, checked=r.checked, wrong=len(r.wrong), shared_cores=" ".join(notes) or "no"))
    return rows


def format_rows(rows: list[dict]) -> str:
    spread = any((r.get("repeats") or 1) > 1 for r in rows)     # --repeat: the runs' makespan range
    head = f"{'taskset':14s} {'mix':22s} {'policy':12s} {'makespan':>9s} {'tasks/s':>8s} {'GFLOP/s':>8s} {'vs single':>9s} " \
           f"{'vs rr':>6s} {'bound':>7s} {'gap':>5s} {'ovh ms':>6s} {'retry':>5s}  " \
           + ("runs: min-max s  gap: median (min-max)  " if spread else "") + "utilization (tasks)"
    lines = [head]
    for r in rows:
        rng = f"{r['repeats']}: {r['makespan_min_s']:.3f}-{r['makespan_max_s']:.3f}".ljust(17) if spread else ""
        if spread and r.get("gap_min") is not None:
            rng += f"gap {r['gap_median']:.2f} ({r['gap_min']:.2f}-{r['gap_max']:.2f})  "
        f = lambda v, spec: format(v, spec) if v is not None and not (isinstance(v, float) and math.isnan(v)) \
            else "-"  # noqa: E731
        util = " ".join(f"{u}({c.split('=')[1]})" for u, c in zip(r["utilization"].split(";"),
                                                                   r["task_counts"].split(";")))
        lines.append(f"{r['taskset']:14s} {r['mix'][:22]:22s} {r['policy']:12s} {f(r['makespan_s'], '9.3f')} {f(r['tasks_per_s'], '8.1f')} "
                     f"{f(r['gflops'], '8.1f')} {f(r['speedup_vs_single'], '9.2f')} "
                     f"{f(r['speedup_vs_round_robin'], '6.2f')} {f(r['bound_s'], '7.3f')} {f(r['gap'], '5.2f')} "
                     f"{f(r['overhead_ms_per_task'], '6.3f')} {r['retries']:5d}  {rng}{util}")
    return "\n".join(lines)


def chrome_trace(results) -> str:
    """traceEvents with ph 'X' (complete events), one process per (task set, policy, mix, device) named
    '<task set> <policy> <mix>: <device>'; ts/dur in µs from the run's start; args.sent_ms is when the driver
    sent the task (ms from the run's start): start minus sent is its wait in the device's queue; args.predicted_ms
    is what the perf model predicted for the task on each device when the policy planned."""
    events, pids = [], {}
    for r in results:
        for e in sorted(r.events, key=lambda e: e["start"]):
            key = f"{r.taskset.name} {r.policy} {r.mix or '-'}: {e['device']}"
            if key not in pids:
                pids[key] = len(pids) + 1
                events.append({"ph": "M", "name": "process_name", "pid": pids[key], "tid": 0,
                               "args": {"name": key}})
                events.append({"ph": "M", "name": "process_sort_index", "pid": pids[key], "tid": 0,
                               "args": {"sort_index": pids[key]}})
            events.append({"ph": "X", "name": e["label"], "cat": e["workload"], "pid": pids[key], "tid": 0,
                           "ts": round((e["start"] - r.t0) * 1e6, 1), "dur": round((e["end"] - e["start"]) * 1e6, 1),
                           "args": {"task": e["task"], "shape": e["shape"], "kernel_s": e["kernel_s"],
                                    "device": e["device"], "sent_ms": round((e["sent"] - r.t0) * 1e3, 3),
                                    **({"predicted_ms": {k: round(v * 1e3, 4) for k, v in e["predicted"].items()}}
                                       if "predicted" in e else {})}})
    return json.dumps({"traceEvents": events, "displayTimeUnit": "ms"}) + "\n"


def read_trace(path) -> dict:
    """A trace written by chrome_trace, back as {(task set, policy, mix): [{task, device, start, end, ...}]}
    (seconds from the run's start; mix '-' when the run had none); a HeteroError naming a file that is not one."""
    from pathlib import Path

    from hetero.errors import HeteroError

    try:
        data = json.loads(Path(path).read_text())
        names = {e["pid"]: e["args"]["name"] for e in data["traceEvents"] if e["ph"] == "M"
                 and e["name"] == "process_name"}
        runs: dict = {}
        for e in data["traceEvents"]:
            if e["ph"] != "X":
                continue
            head = names[e["pid"]].rsplit(": ", 1)[0]           # "<task set> <policy> <mix>: <device>"
            taskset, policy, mix = (head.split(" ", 2) + ["-"])[:3]
            runs.setdefault((taskset, policy, mix), []).append(
                {"task": int(e["args"]["task"]), "device": e["args"]["device"], "start": e["ts"] / 1e6,
                 "end": (e["ts"] + e["dur"]) / 1e6, "label": e["name"], "workload": e["cat"],
                 **({"sent": e["args"]["sent_ms"] / 1e3} if "sent_ms" in e["args"] else {}),
                 **({"predicted": {k: v / 1e3 for k, v in e["args"]["predicted_ms"].items()}}
                    if "predicted_ms" in e["args"] else {})})
    except FileNotFoundError:
        raise HeteroError(f"no schedule trace at {path}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise HeteroError(f"corrupt schedule trace {path}: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    return runs
