"""A discrete-event simulation of the scheduler's own policy objects (hetero.scheduler.policies) placing a task set:
every task takes the time `actual(task, device)` gives (default: the model's prediction). No Ray, and no second
implementation of any policy: the loop below is the runtime's loop (runtime.execute) with a clock instead of actors,
late binding (Policy.commit) included where durations differ from predictions.

Devices pinned to the same cores (bench.schedule --share-cores) share them (_Cores): a task's end moves whenever
another task starts or ends on its cores, so each device runs a queue of placed tasks and the clock's events are
a device starting its next task, a core group's next end (stale once the group's sharing changed), and the
driver hearing of an end.

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

from hetero.scheduler.perfmodel import RECENT
from hetero.scheduler.policies import DeviceState, Policy, estimate, kind, place_task, predict


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


class _Cores:
    """Devices pinned to the same cores (bench.schedule --share-cores) time-slice them: while n of their tasks run,
    each advances at 1/n of its speed alone. `left` holds each running task's remaining seconds alone."""

    def __init__(self, devices: list[DeviceState], cores: dict | None):
        keys = [(cores or {}).get(d.name, ("own", i)) for i, d in enumerate(devices)]
        ids = {k: g for g, k in enumerate(dict.fromkeys(keys))}
        self.of = [ids[k] for k in keys]                  # device index -> core group
        self.running = [dict() for _ in ids]              # group -> {device index: task}
        self.left: dict = {}                               # task id -> seconds alone still to run
        self.shared: set = set()                           # ids of tasks that ran beside a group mate's
        self.since = [0.0] * len(ids)                      # group -> when `left` was last brought up to date
        self.version = [0] * len(ids)                      # group -> bumped whenever its next end moves

    def settle(self, g: int, now: float) -> None:
        run = self.running[g]
        if run and now > self.since[g]:
            step = (now - self.since[g]) / len(run)
            for t in run.values():
                self.left[t.id] -= step
        self.since[g] = now

    def next_end(self, g: int, now: float):
        """(time, device index) of the group's next task to end at the current sharing, or None when idle."""
        self.version[g] += 1
        run = self.running[g]
        if not run:
            return None
        j = min(run, key=lambda j: self.left[run[j].id])
        return now + max(0.0, self.left[run[j].id]) * len(run), j


def simulate(tasks, devices: list[DeviceState], policy: Policy, model, actual=None, pool: bool = True,
             overhead: dict | None = None, notify: dict | None = None, cores: dict | None = None) -> SimResult:
    """Run `policy` over `tasks` on `devices` with a clock; pool=False shows every device to the policy always.

    actual(task, device): seconds the task takes on that device alone (default: the model's prediction).
    overhead: device name -> seconds a device stays taken after each task (a Ray actor stores the output in the
    object store and takes its next call); by default each device's own DeviceState.overhead, which is also
    what the policies and the queue ends count, as in the runtime.
    notify: device name -> (busy, idle): seconds from a task's end on that device to the driver acting on it,
    when the device goes straight on to a queued task (Ray then stores the output while the next one runs) and
    when it has nothing queued. Its children become ready, and its queue shrinks, only then; none by default.
    cores: device name -> a key shared by the devices pinned to the same cores, which then share their speed
    (_Cores); by default each device's DeviceState.share (None: cores of its own)."""
    if cores is None:
        cores = {d.name: d.share for d in devices if d.share is not None}
    wall = time.perf_counter()
    given, actual = actual is not None, actual or (lambda t, d: predict(model, t, d))
    for d in devices:
        d.queue_end, d.outstanding, d.exploring = 0.0, 0, set()
    index = {d.name: i for i, d in enumerate(devices)}
    after = [(overhead or {}).get(d.name, d.overhead) for d in devices]
    known = [(notify or {}).get(d.name, (0.0, 0.0)) for d in devices]
    share = _Cores(devices, cores)
    learn = getattr(model, "observe", None)    # a model that learns from each simulated task, as the runtime's
    free_at = [0.0] * len(devices)   # when each device can start its next task (its last one ended + overhead)
    waiting_on = [deque() for _ in devices]   # per device: (arrival, task, seconds alone) placed, not started
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
    # (time, seq, what, device index, payload): "start" the device's next task if it can; "end" of a task if the
    # payload is still its core group's version; "notice": the driver hears the payload task ended
    events: list = []
    now, seq, changed = 0.0, 0, True
    # Late binding (Policy.commit): a device is sent at most `commit` tasks; the pass's other placements on it
    # are held and placed again once a task ends (committed: each device's queue end over the tasks it was sent).
    # It changes what a policy does only where durations differ from predictions, so only with `actual` given:
    # each pass then places held tasks again, O(ready) per task end, too slow for 100,000 tasks.
    commit = policy.commit if given and not policy.pulls else None   # a pulling policy keeps its own slots
    committed, full, holding = [0.0] * len(devices), 0, set()

    def push(at, what, j, payload=None):
        nonlocal seq
        heapq.heappush(events, (at, seq, what, j, payload))
        seq += 1

    def group_changed(g):
        nxt = share.next_end(g, now)
        if nxt:
            push(nxt[0], "end", nxt[1], share.version[g])

    while len(res.where) < len(tasks):
        if fresh:
            for t in fresh:
                per_workload[t.case.workload] = per_workload.get(t.case.workload, 0) + 1
            ready = deque(policy.order(list(ready) + fresh))
            fresh = []
        declined, kept = set(), []
        if changed:              # as the runtime: the last pass's held placements are planned again
            for j in holding:
                devices[j].queue_end = committed[j]
                if pools:
                    pools.lowered(j)
            holding = set()
            policy.begin(now)
        def send(t, d, p, tr):
            nonlocal full
            j = index[d.name]
            committed[j] = d.queue_end
            full += commit is not None and d.outstanding + 1 == commit
            policy.placed(t, d)
            queued[j] += p
            predicted[t.id] = p
            d.outstanding += 1
            # The call travels with its inputs from the moment it is placed (every call pays at least the device's
            # per-call latency), overlapping whatever the device is still running, as a queued Ray actor call does.
            dur = actual(t, d)
            waiting_on[j].append((now + (tr or d.latency), t, dur if dur is not None else estimate(model, t, devices)))
            if len(waiting_on[j]) == 1 and j not in share.running[share.of[j]]:
                push(max(free_at[j], waiting_on[j][0][0]), "start", j)
            per_workload[t.case.workload] -= 1

        if changed and policy.pulls and ready:     # each device with a free slot takes a task (policy.assign)
            for t, d in policy.assign(list(ready), view(), model, now):
                _, p, tr, _ = place_task(policy, t, view(), devices, model, now, res.where, None, device=d)
                send(t, d, p, tr)
                ready.remove(t)
        held_in_row = 0
        while changed and not policy.pulls and ready and len(declined) < sum(1 for n in per_workload.values() if n):
            if commit and (full == len(devices) or held_in_row == policy.lookahead or _none_wants(
                    policy, view(), commit, model, now)):
                break            # every device holds all it may or wants none, or the policy looks no further
            t = ready.popleft()
            w = t.case.workload
            if w in declined:
                kept.append(t)
                continue
            got = place_task(policy, t, view(), devices, model, now, res.where, commit)
            if got is None:
                declined.add(w)
                kept.append(t)
                continue
            d, p, tr, held = got
            if held:
                kept.append(t)   # counted in d's queue for the rest of this pass, placed again later
                holding.add(index[d.name])
                held_in_row += 1
                continue
            held_in_row = 0
            send(t, d, p, tr)
        ready.extendleft(reversed(kept))
        changed = False
        if not events:
            raise RuntimeError(f"policy {policy.name} placed none of {len(ready)} ready tasks and none is running")
        now, _, what, j, payload = heapq.heappop(events)
        g = share.of[j]
        if what == "start":
            _, t, alone = waiting_on[j].popleft()
            share.settle(g, now)
            if share.running[g]:            # as the runtime, a time taken beside a mate's teaches nothing
                share.shared.update([t.id] + [o.id for o in share.running[g].values()])
            share.running[g][j] = t
            share.left[t.id] = alone
            res.start[t.id] = now
            group_changed(g)
            continue
        if what == "end":
            if payload != share.version[g]:
                continue                    # the group's sharing changed since: a later "end" replaced this one
            share.settle(g, now)
            t = share.running[g].pop(j)
            del share.left[t.id]
            group_changed(g)
            res.end[t.id] = now
            busy[j] += now - res.start[t.id]
            free_at[j] = now + after[j]
            if waiting_on[j]:
                push(max(free_at[j], waiting_on[j][0][0]), "start", j)
            lag = known[j][0] if devices[j].outstanding > 1 else known[j][1]
            if lag > 0:     # the driver hears of it later: Ray stores the output (beside the next task, if queued)
                push(now + lag, "notice", j, t)
                continue
        else:
            t = payload
        changed = True
        d = devices[j]
        took = None if t.id in share.shared else res.end[t.id] - res.start[t.id]
        if learn and took is not None:
            learn(d.device, t.case, took)
        policy.ended(t, d, took)
        d.outstanding -= 1
        d.exploring.discard(kind(t))
        queued[j] -= predicted.pop(t.id)
        full -= commit is not None and d.outstanding + 1 == commit
        was, d.queue_end = d.queue_end, now + max(0.0, queued[j])   # as the runtime does: now + what is queued
        committed[j] = d.queue_end
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
    """The model of a real run: (device name, case) -> what the run's perf model predicted for that kind on that
    device when its policy planned (`predict`; runs that did not record it: the mean seconds it took there), and
    the mean it would have taken alone on its cores (`actual`, solo_seconds; its mean duration where no two
    devices shared a core)."""

    def __init__(self, runs: list[list[dict]], tasks, fallback: "RunTimes | None" = None, cores: dict | None = None):
        self.fallback = fallback         # for kinds these runs never put on a device
        case_of = {t.id: t.case for t in tasks}
        acc: dict = {}
        for events in runs:
            for e, alone in zip(events, solo_seconds(events, cores)):
                s = acc.setdefault((e["device"], case_of[e["task"]]), [0.0, 0.0, 0])
                s[0] += e["end"] - e["start"]
                s[1] += alone
                s[2] += 1
        self.mean = {k: total / n for k, (total, _, n) in acc.items()}
        self.alone = {k: total / n for k, (_, total, n) in acc.items()}
        self.recorded: dict = {}   # what the run's perf model predicted when its policy planned, where recorded
        for events in runs:
            for e in events:
                self.recorded.update({(d, case_of[e["task"]]): s for d, s in e.get("predicted", {}).items()})
        self.mean.update(self.recorded)

    def predict(self, backend: str, device: str, case) -> float | None:
        t = self.mean.get((device, case))
        return t if t is not None or self.fallback is None else self.fallback.predict(backend, device, case)

    def observe(self, device: str, case, seconds: float) -> None:
        """A task of `case` took `seconds` on `device` in the simulation: learnt as the runtime's perf model
        learns each task (History's recent mean); as there, not a time taken beside a core mate's task."""
        was = self.predict("", device, case)
        self.mean[(device, case)] = seconds if was is None else (1 - RECENT) * was + RECENT * seconds

    def actual(self, task, dev: DeviceState) -> float | None:
        """Its mean alone in these runs, else in the fallback's, else what the perf model predicted for it (a
        mean of earlier runs), rather than the simulator's last resort, the mean over every device that ran the
        kind: that put fpga-emu's 7.5-s emulations of an attention into opencl's time for it."""
        key = (dev.device, task.case)
        t = self.alone.get(key)
        if t is None and self.fallback is not None:
            t = self.fallback.actual(task, dev)
        return self.recorded.get(key) if t is None else t


def _none_wants(policy: Policy, shown: list, commit: int, model, now: float) -> bool:
    """No device shown with a free slot wants a ready task (Policy.wants): the pass may end."""
    return not any(d.outstanding < commit and policy.wants(d, shown, model, now) for d in shown)


def solo_seconds(events: list[dict], cores: dict | None = None) -> list[float]:
    """Per event of one run, the seconds its task would have taken alone: while n tasks of devices sharing cores
    (cores: device name -> key, as simulate's) run at once, each is taken to advance at 1/n of its speed. In the
    committed numba+numpy+torch run with numba and torch on one core, this shrinks the scatter of a kind's
    durations on mixed:40: for 8 of the 9 kinds longer than 40 ms the coefficient of variation falls, median
    0.33 -> 0.13."""
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
    for inputs is `notify_latency`'s). Zen 5 figures per actor design: see actors.CALLS_IN_FLIGHT."""
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
    which places (4.9-5.8 ms in the committed Zen 5 run's graphs); 0 without task graphs.
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


def replay(tasks, states: list[DeviceState], policy: Policy, events: list[dict], others: list[list[dict]] = (),
           overhead: dict | None = None, notify: dict | None = None, cores: dict | None = None) -> SimResult:
    """The simulator's version of a real run: the same tasks, devices (DeviceStates whose `device` is the run's
    device name, with its measured transfer costs) and policy, each (device, task kind) taking its mean duration
    over `events` (the run's own: a 2-core VM runs 10-40% slower in some runs than others), else over `others`
    (the set's other runs, one event list each), else the mean over the devices that ran it; each task then
    holds its device `overhead` longer (call_overhead of the mix's runs), which the policies also count, as the
    runtime's learnt one. Devices that shared cores (cores, as simulate's) share them again, each kind taking its
    solo_seconds mean alone."""
    for d in states:
        d.overhead = (overhead or {}).get(d.name, d.overhead)
    times = RunTimes([events], tasks, RunTimes(list(others), tasks, cores=cores), cores=cores)
    return simulate(tasks, states, policy, times, actual=times.actual, overhead=overhead, notify=notify, cores=cores)
