"""A discrete-event simulation of the scheduler's own policy objects (hetero.scheduler.policies) placing a task set:
every task takes the time `actual(task, device)` gives (default: the model's prediction). No Ray, and no second
implementation of any policy: the loop below is the runtime's loop (runtime.execute) with a clock instead of actors.

Scale. Identical devices (same backend, device, transfer costs and workloads) form a pool. When the set has no
dependencies, a policy that is indifferent among identical devices (Policy.pooled: dmda, eager) is shown one
device per pool, the member whose queue drains first, so a placement costs O(pools) instead of O(devices):
dmda's argmin over all devices is always some pool's earliest-draining member, so its choices are unchanged.
Ready tasks that a policy declines (eager with every device busy) wait in order; a pass stops as soon as every
workload still waiting has been declined, so a pass costs O(placed), not O(ready).
"""
from __future__ import annotations

import heapq
import math
import time
from collections import deque
from dataclasses import dataclass, field

from hetero.scheduler.policies import DeviceState, Policy, estimate, kind, predict, transfer


@dataclass
class SimResult:
    policy: str
    makespan: float
    where: dict                    # task id -> device name
    start: dict = field(default_factory=dict)   # task id -> simulated start (s)
    end: dict = field(default_factory=dict)     # task id -> simulated end (s)
    busy: dict = field(default_factory=dict)    # device name -> busy seconds
    wall_s: float = 0.0            # how long the simulation itself took

    def counts(self) -> dict:
        out: dict = {}
        for name in self.where.values():
            out[name] = out.get(name, 0) + 1
        return out


class _Pools:
    """Per pool, a heap of (queue_end, index) with an entry per member. A stale top is re-keyed until the top is
    current; a queue_end that went down gets a fresh entry (lowered); the top is then the member whose queue
    drains first."""

    def __init__(self, devices: list[DeviceState]):
        groups: dict = {}
        for i, d in enumerate(devices):
            groups.setdefault((d.backend, d.device, d.latency, d.bandwidth, d.supports), []).append(i)
        self.devices = devices
        self.heaps = [[(devices[i].queue_end, i) for i in members] for members in groups.values()]
        self.heap_of = {i: h for h in self.heaps for _, i in h}
        for h in self.heaps:
            heapq.heapify(h)

    def lowered(self, i: int) -> None:
        """Device i's queue_end went down (its tasks ran shorter than predicted): a fresh entry brings it up."""
        heapq.heappush(self.heap_of[i], (self.devices[i].queue_end, i))

    def view(self) -> list[DeviceState]:
        out = []
        for h in self.heaps:
            while h[0][0] != self.devices[h[0][1]].queue_end:
                heapq.heapreplace(h, (self.devices[h[0][1]].queue_end, h[0][1]))
            out.append(self.devices[h[0][1]])
        return out


def simulate(tasks, devices: list[DeviceState], policy: Policy, model, actual=None, pool: bool = True,
             overhead: dict | None = None, notify: dict | None = None) -> SimResult:
    """Run `policy` over `tasks` on `devices` with a clock; pool=False shows every device to the policy always.

    overhead: device name -> seconds a device stays taken after each task (a Ray actor stores the output in the
    object store and takes its next call); by default each device's own DeviceState.overhead, which is also
    what the policies and the queue ends count, as in the runtime.
    notify: device name -> (busy, idle): seconds from a task's end on that device to the driver acting on it,
    when the device goes straight on to a queued task (Ray then stores the output while the next one runs) and
    when it has nothing queued. Its children become ready, and its queue shrinks, only then; none by default."""
    wall = time.perf_counter()
    actual = actual or (lambda t, d: predict(model, t, d))
    for d in devices:
        d.queue_end, d.outstanding, d.exploring = 0.0, 0, set()
    index = {d.name: i for i, d in enumerate(devices)}
    after = [(overhead or {}).get(d.name, d.overhead) for d in devices]
    known = [(notify or {}).get(d.name, (0.0, 0.0)) for d in devices]
    free_at = [0.0] * len(devices)
    queued = [0.0] * len(devices)    # predicted seconds of the tasks placed on each device and not finished
    predicted: dict = {}
    busy = [0.0] * len(devices)
    children: dict = {t.id: [] for t in tasks}
    for t in tasks:
        for p in t.deps:
            children[p].append(t)
    waiting = {t.id: len(t.deps) for t in tasks}
    independent = not any(t.deps for t in tasks)
    pools = _Pools(devices) if pool and policy.pooled and independent else None
    view = pools.view if pools else (lambda: devices)
    res = SimResult(policy.name, 0.0, {})
    policy.plan(tasks, devices, model)
    fresh = [t for t in tasks if not t.deps]
    ready: deque = deque()
    per_workload: dict = {}        # workload -> ready tasks of it
    events: list = []              # (end, seq, task, device index)
    now, seq = 0.0, 0
    while len(res.where) < len(tasks):
        if fresh:
            for t in fresh:
                per_workload[t.case.workload] = per_workload.get(t.case.workload, 0) + 1
            ready = deque(policy.order(list(ready) + fresh))
            fresh = []
        declined, kept = set(), []
        while ready and len(declined) < sum(1 for n in per_workload.values() if n):
            t = ready.popleft()
            w = t.case.workload
            if w in declined:
                kept.append(t)
                continue
            if t.deps:
                t.resident = {}
                for p in t.deps:
                    t.resident[res.where[p]] = t.resident.get(res.where[p], 0.0) + t.nbytes / len(t.deps)
            d = policy.place(t, view(), model, now)
            if d is None:
                declined.add(w)
                kept.append(t)
                continue
            policy.placed(t, d)
            j = index[d.name]
            p = predict(model, t, d)
            p = (p if p is not None else estimate(model, t, devices)) + d.overhead
            tr = transfer(t, d)
            d.queue_end = max(d.queue_end, now + tr) + p
            queued[j] += p
            predicted[t.id] = p
            d.outstanding += 1
            # The call travels with its inputs from the moment it is placed (every call pays at least the device's
            # per-call latency), overlapping whatever the device is still running, as a queued Ray actor call does.
            start = max(free_at[j], now + (tr or d.latency))
            dur = actual(t, d)
            dur = dur if dur is not None else estimate(model, t, devices)
            free_at[j] = start + dur + after[j]
            busy[j] += dur
            res.start[t.id], res.end[t.id] = start, start + dur
            heapq.heappush(events, (start + dur, seq, t, j, False))
            seq += 1
            per_workload[w] -= 1
        ready.extendleft(reversed(kept))
        if not events:
            raise RuntimeError(f"policy {policy.name} placed none of {len(ready)} ready tasks and none is running")
        now, _, t, j, noticed = heapq.heappop(events)
        lag = 0.0 if noticed else known[j][0] if devices[j].outstanding > 1 else known[j][1]
        if lag > 0:     # the driver hears of it later: Ray stores the output (beside the next task, if queued)
            heapq.heappush(events, (now + lag, seq, t, j, True))
            seq += 1
            continue
        d = devices[j]
        d.outstanding -= 1
        d.exploring.discard(kind(t))
        queued[j] -= predicted.pop(t.id)
        was, d.queue_end = d.queue_end, now + max(0.0, queued[j])   # as the runtime does: now + what is queued
        if pools and d.queue_end < was:
            pools.lowered(j)
        res.where[t.id] = d.name
        for c in children[t.id]:
            waiting[c.id] -= 1
            if waiting[c.id] == 0:
                fresh.append(c)
    res.makespan = max(res.end.values(), default=0.0)
    res.busy = {d.name: busy[i] for i, d in enumerate(devices)}
    res.wall_s = time.perf_counter() - wall
    return res


class RunTimes:
    """The model of a real run: (device name, case) -> the mean seconds that kind took on that device in it."""

    def __init__(self, events: list[dict], tasks, fallback: "RunTimes | None" = None):
        self.fallback = fallback         # for kinds this run never put on a device
        case_of = {t.id: t.case for t in tasks}
        acc: dict = {}
        for e in events:
            s = acc.setdefault((e["device"], case_of[e["task"]]), [0.0, 0])
            s[0] += e["end"] - e["start"]
            s[1] += 1
        self.mean = {k: total / n for k, (total, n) in acc.items()}

    def predict(self, backend: str, device: str, case) -> float | None:
        t = self.mean.get((device, case))
        return t if t is not None or self.fallback is None else self.fallback.predict(backend, device, case)


def call_overhead(runs: list[list[dict]]) -> dict:
    """device name -> median idle time between one task's end and the next task's start on that device, over
    every run given: what each task costs its device beyond its own run (Ray storing the output, delivering the
    next call). Where events say when each task was sent, only gaps before a task already waiting count (a wait
    for inputs is `notify_latency`'s). On mixed:40 in the committed Zen 5 runs: 3.6-4.3 ms a task with one call in
    an actor at a time, 0.33-0.39 ms with two (actors.CALLS_IN_FLIGHT)."""
    gaps: dict = {}
    for events in runs:
        for name, evs in _by_device(events).items():
            gaps.setdefault(name, []).extend(max(0.0, b["start"] - a["end"]) for a, b in zip(evs, evs[1:])
                                             if b.get("sent", -math.inf) < a["end"])
    return {name: _median(g) for name, g in gaps.items() if g}


def _by_device(events: list[dict]) -> dict:
    """device name -> its events in start order."""
    per: dict = {}
    for e in sorted(events, key=lambda e: e["start"]):
        per.setdefault(e["device"], []).append(e)
    return per


def _median(values: list) -> float:
    return sorted(values)[len(values) // 2] if values else 0.0


def notify_latency(runs: list[list[dict]], tasks) -> dict:
    """device name -> (busy, idle) medians over `runs` (empty without send times):
    busy: from a task's end to the driver sending a child it released (its last parent), over tasks followed on
    their device by a task already sent: Ray storing the output beside the next task, then telling the driver,
    which places (7-15 ms in the committed Zen 5 run's graphs); 0 without task graphs.
    idle: from a task's end to the driver sending the next task to that device, over next tasks sent after it
    ended though their inputs were ready before: the driver's turnaround for an idle device (every task of
    eager pays it)."""
    deps = {t.id: t.deps for t in tasks}
    lags: dict = {}
    for events in runs:
        by = {e["task"]: e for e in events}
        busy_after = set()                # tasks whose device had the next task waiting when they ended
        per = _by_device(events)
        for evs in per.values():
            busy_after |= {a["task"] for a, b in zip(evs, evs[1:]) if b.get("sent", math.inf) < a["end"]}
        first: dict = {}                  # parent -> earliest send of a child it released
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
                ready = max((by[p]["end"] for p in deps.get(b["task"], ()) if p in by), default=-math.inf)
                if b.get("sent", -math.inf) >= a["end"] and ready <= a["end"]:
                    lags.setdefault(name, ([], []))[1].append(b["sent"] - a["end"])
    return {name: (_median(b), _median(i)) for name, (b, i) in lags.items()}


def replay(tasks, states: list[DeviceState], policy: Policy, events: list[dict], others: list[dict] = (),
           overhead: dict | None = None, notify: dict | None = None) -> SimResult:
    """The simulator's version of a real run: the same tasks, devices (DeviceStates whose `device` is the run's
    device name, with its measured transfer costs) and policy, each (device, task kind) taking its mean duration
    over `events` (the run's own: a 2-core VM runs 10-40% slower in some runs than others), else over `others`
    (the set's other runs), else the mean over the devices that ran it; each task then holds its device `overhead` longer
    (call_overhead of the mix's runs), which the policies also count, as the runtime's learnt one."""
    for d in states:
        d.overhead = (overhead or {}).get(d.name, d.overhead)
    return simulate(tasks, states, policy, RunTimes(events, tasks, RunTimes(list(others), tasks)),
                    overhead=overhead, notify=notify)
