"""A schedule's trace: written as a Chrome trace (Perfetto opens it), read back, and analysed for what a replay
needs: each task's time alone on shared cores, a device's per-call overhead, the driver's completion-notice
latency. An event is a dict with task, device, start and end (seconds from the run's start), and sent where the
runtime recorded when it sent the task.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from hetero.errors import HeteroError


def solo_seconds(events: list[dict], cores: dict | None = None) -> list[float]:
    """Per event of one run, the seconds its task would have taken alone: while n tasks of devices sharing cores
    (cores: device name -> key, as simulate's) run at once, each is taken to advance at 1/n of its speed (time
    slicing shares a core evenly among the threads that want it)."""
    out = [e["end"] - e["start"] for e in events]
    groups: dict = {}
    for i, e in enumerate(events):
        if e["device"] in (cores or {}):
            groups.setdefault(cores[e["device"]], []).append(i)
    for members in groups.values():
        marks = sorted([(events[i]["end"], -1, i) for i in members] + [(events[i]["start"], 1, i) for i in members])
        on, last = set(), 0.0
        for at, step, i in marks:
            for k in on:
                out[k] -= (at - last) * (1 - 1 / len(on))
            last = at
            (on.add if step > 0 else on.discard)(i)
    return out


def call_overhead(runs: list[list[dict]]) -> dict:
    """device name -> median idle time between one task's end and the next task's start on that device, over
    every run given: what each task costs its device beyond its own run (Ray storing the output, delivering the
    next call). Where events say when each task was sent, only gaps before a task already waiting count (a wait
    for inputs is `notify_latency`'s)."""
    gaps: dict = {}
    for events in runs:
        for name, evs in _by_device(events).items():
            gaps.setdefault(name, []).extend(
                max(0.0, b["start"] - a["end"]) for a, b in zip(evs, evs[1:]) if b.get("sent", -math.inf) < a["end"]
            )
    return {name: _median(g) for name, g in gaps.items() if g}


def _by_device(events: list[dict]) -> dict:
    """device name -> its events in start order."""
    per: dict = {}
    for e in sorted(events, key=lambda e: e["start"]):
        per.setdefault(e["device"], []).append(e)
    return per


def _median(values: list) -> float:
    return sorted(values)[len(values) // 2] if values else 0.0


def notify_latency(runs: list[list[dict]], tasks, released: list[dict] | None = None) -> dict:
    """device name -> (busy, idle) medians over `runs` (empty without send times):
    busy: from a task's end to the driver sending a child it released (its last parent), over tasks followed on
    their device by a task already sent: Ray storing the output beside the next task, then telling the driver,
    which places; 0 without task graphs.
    idle: from a task's end to the driver sending the next task to that device, over next tasks sent after it
    ended though their inputs were ready before: the driver's turnaround for an idle device (every task of
    eager pays it). released: per run, task id -> when a stream released it (run clock): a request is not ready
    before it arrives."""
    deps = {t.id: t.deps for t in tasks}
    lags: dict = {}
    for events, arrived in zip(runs, released or [{}] * len(runs)):
        by = {e["task"]: e for e in events}
        busy_after = set()  # tasks whose device had the next task waiting when they ended
        per = _by_device(events)
        for evs in per.values():
            busy_after |= {a["task"] for a, b in zip(evs, evs[1:]) if b.get("sent", math.inf) < a["end"]}
        first: dict = {}  # parent -> earliest send of a child it released
        for e in events:
            ps = [by[p] for p in deps.get(e["task"], ()) if p in by]
            if "sent" in e and ps:
                last = max(ps, key=lambda p: p["end"])
                first[last["task"]] = min(first.get(last["task"], math.inf), e["sent"])
        for p, sent in first.items():
            if p in busy_after:
                lags.setdefault(by[p]["device"], ([], []))[0].append(max(0.0, sent - by[p]["end"]))
        for name, evs in per.items():
            for a, b in zip(evs, evs[1:]):
                ready = max(
                    (by[p]["end"] for p in deps.get(b["task"], ()) if p in by),
                    default=arrived.get(b["task"], -math.inf),
                )
                if b.get("sent", -math.inf) >= a["end"] and ready <= a["end"]:
                    lags.setdefault(name, ([], []))[1].append(b["sent"] - a["end"])
    return {name: (_median(b), _median(i)) for name, (b, i) in lags.items()}


def chrome_trace(results) -> str:
    """traceEvents with ph 'X' (complete events), one process per (task set, policy, mix, device) named
    '<task set> <policy> <mix>: <device>'; ts/dur in µs from the run's start; args.sent_ms is when the driver
    sent the task (ms from the run's start): start minus sent is its wait in the device's queue; args.predicted_ms
    is what the perf model predicted for the task on each device when the policy planned, and
    args.planned_overhead_ms the call overhead the policy priced the task's device with, args.planned_error the
    prediction error the guard started from on each device (hetero.scheduler.slips)."""
    events, pids = [], {}
    for r in results:
        for e in sorted(r.events, key=lambda e: e["start"]):
            key = f"{r.taskset.name} {r.policy} {r.mix or '-'}: {e['device']}"
            if key not in pids:
                pids[key] = len(pids) + 1
                events.append({"ph": "M", "name": "process_name", "pid": pids[key], "tid": 0, "args": {"name": key}})
                events.append(
                    {
                        "ph": "M",
                        "name": "process_sort_index",
                        "pid": pids[key],
                        "tid": 0,
                        "args": {"sort_index": pids[key]},
                    }
                )
            events.append(
                {
                    "ph": "X",
                    "name": e["label"],
                    "cat": e["workload"],
                    "pid": pids[key],
                    "tid": 0,
                    "ts": round((e["start"] - r.t0) * 1e6, 1),
                    "dur": round((e["end"] - e["start"]) * 1e6, 1),
                    "args": {
                        "task": e["task"],
                        "shape": e["shape"],
                        "kernel_s": e["kernel_s"],
                        "device": e["device"],
                        "sent_ms": round((e["sent"] - r.t0) * 1e3, 3),
                        **(
                            {"predicted_ms": {k: round(v * 1e3, 4) for k, v in e["predicted"].items()}}
                            if "predicted" in e
                            else {}
                        ),
                        **(
                            {"planned_overhead_ms": round(e["planned_overhead"] * 1e3, 4)}
                            if "planned_overhead" in e
                            else {}
                        ),
                        **(
                            {"planned_error": {k: round(v, 4) for k, v in e["planned_error"].items()}}
                            if "planned_error" in e
                            else {}
                        ),
                    },
                }
            )
    return json.dumps({"traceEvents": events, "displayTimeUnit": "ms"}) + "\n"


def read_trace(path) -> dict:
    """A trace written by chrome_trace, back as {(task set, policy, mix): [{task, device, start, end, ...}]}
    (seconds from the run's start; mix '-' when the run had none); a HeteroError naming a file that is not one."""
    try:
        data = json.loads(Path(path).read_text())
        names = {
            e["pid"]: e["args"]["name"] for e in data["traceEvents"] if e["ph"] == "M" and e["name"] == "process_name"
        }
        runs: dict = {}
        for e in data["traceEvents"]:
            if e["ph"] != "X":
                continue
            head = names[e["pid"]].rsplit(": ", 1)[0]  # "<task set> <policy> <mix>: <device>"
            taskset, policy, mix = (head.split(" ", 2) + ["-"])[:3]
            runs.setdefault((taskset, policy, mix), []).append(
                {
                    "task": int(e["args"]["task"]),
                    "device": e["args"]["device"],
                    "start": e["ts"] / 1e6,
                    "end": (e["ts"] + e["dur"]) / 1e6,
                    "label": e["name"],
                    "workload": e["cat"],
                    **({"sent": e["args"]["sent_ms"] / 1e3} if "sent_ms" in e["args"] else {}),
                    **(
                        {"predicted": {k: v / 1e3 for k, v in e["args"]["predicted_ms"].items()}}
                        if "predicted_ms" in e["args"]
                        else {}
                    ),
                    **(
                        {"planned_overhead": e["args"]["planned_overhead_ms"] / 1e3}
                        if "planned_overhead_ms" in e["args"]
                        else {}
                    ),
                    **(
                        {"planned_error": {k: float(v) for k, v in e["args"]["planned_error"].items()}}
                        if "planned_error" in e["args"]
                        else {}
                    ),
                }
            )
    except FileNotFoundError:
        raise HeteroError(f"no schedule trace at {path}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise HeteroError(f"corrupt schedule trace {path}: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    return runs
