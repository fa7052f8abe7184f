"""The simulator: the driver loop (hetero.scheduler.driver) on a discrete-event clock instead of Ray actors, so that
every policy runs its own code and every rule of the runtime holds (late binding where durations differ from
predictions, what the perf model learns, a device's queue end). No Ray.

Every task takes the time `actual(task, device)` gives (default: the model's prediction). A call travels with its
inputs from the moment it is placed (at least the device's per-call latency) and waits behind the device's
running task, as a queued Ray actor call does; each task holds its device `overhead` longer (the actor storing its
output). Devices pinned to the same cores (bench.schedule --share-cores) time-slice them (_Cores), so a task's end
moves whenever another starts or ends on its cores: the clock's events are a device starting its next task, a core
group's next end (stale once the group's sharing changed), and the driver hearing of an end (`notify`).

Scale: identical devices form pools (hetero.scheduler.pools), and a policy indifferent among them sees one device
a pool on a set with no dependencies; a pass stops once every workload waiting was declined (the driver's rule).
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hetero.scheduler.costs import estimate, predict
from hetero.scheduler.device import DeviceState
from hetero.scheduler.driver import Done, Driver

if TYPE_CHECKING:  # annotation only: the auto policy simulates its candidates, so policies import this module
    from hetero.scheduler.policies.base import Policy


@dataclass
class SimResult:
    policy: str
    makespan: float
    where: dict  # task id -> device name
    start: dict = field(default_factory=dict)  # task id -> simulated start (s)
    end: dict = field(default_factory=dict)  # task id -> simulated end (s)
    busy: dict = field(default_factory=dict)  # device name -> busy seconds
    wall_s: float = 0.0  # how long the simulation itself took

    def counts(self) -> dict:
        out: dict = {}
        for name in self.where.values():
            out[name] = out.get(name, 0) + 1
        return out


class _Cores:
    """Devices pinned to the same cores (bench.schedule --share-cores) time-slice them: while n of their tasks run,
    each advances at 1/n of its speed alone. `left` holds each running task's remaining seconds alone."""

    def __init__(self, devices: list[DeviceState], cores: dict | None):
        keys = [(cores or {}).get(d.name, ("own", i)) for i, d in enumerate(devices)]
        ids = {k: g for g, k in enumerate(dict.fromkeys(keys))}
        self.of = [ids[k] for k in keys]  # device index -> core group
        self.running = [dict() for _ in ids]  # group -> {device index: task}
        self.left: dict = {}  # task id -> seconds alone still to run
        self.shared: set = set()  # ids of tasks that ran beside a group mate's
        self.since = [0.0] * len(ids)  # group -> when `left` was last brought up to date
        self.version = [0] * len(ids)  # group -> bumped whenever its next end moves

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


class Clock:
    """The simulator's executor for the driver: a heap of (time, seq, what, device index, payload) events,
    what being "start" (the device's next task, if it can), "end" (of a task, if the payload is still its core
    group's version) or "notice" (the driver hears that the payload task ended)."""

    def __init__(self, devices: list[DeviceState], model, actual, overhead: dict, notify: dict, cores: dict):
        self.devices, self.model, self.actual = devices, model, actual
        self.index = {d.name: i for i, d in enumerate(devices)}
        self.after = [overhead.get(d.name, d.overhead) for d in devices]
        self.known = [notify.get(d.name, (0.0, 0.0)) for d in devices]
        self.cores = _Cores(devices, cores)
        self.free_at = [0.0] * len(devices)  # when each device can start its next task
        self.queue = [deque() for _ in devices]  # per device: (arrival, task, seconds alone), placed, not started
        self.busy = [0.0] * len(devices)
        self.start: dict = {}  # task id -> simulated start
        self.events: list = []
        self.seq, self.t = 0, 0.0

    def now(self) -> float:
        return self.t

    def _push(self, at, what, j, payload=None):
        heapq.heappush(self.events, (at, self.seq, what, j, payload))
        self.seq += 1

    def send(self, t, d: DeviceState, p: float, tr: float) -> None:
        j = self.index[d.name]
        dur = self.actual(t, d)
        q = self.queue[j]
        q.append((self.t + (tr or d.latency), t, dur if dur is not None else estimate(self.model, t, self.devices)))
        if len(q) == 1 and j not in self.cores.running[self.cores.of[j]]:
            self._push(max(self.free_at[j], q[0][0]), "start", j)

    def _group_changed(self, g):
        nxt = self.cores.next_end(g, self.t)
        if nxt:
            self._push(nxt[0], "end", nxt[1], self.cores.version[g])

    def wait(self, until: float | None = None) -> list:
        """Run the clock to the next end the driver hears of, or to `until` if that comes first."""
        cores = self.cores
        while self.events:
            if until is not None and self.events[0][0] > until:
                break
            self.t, _, what, j, payload = heapq.heappop(self.events)
            g = cores.of[j]
            if what == "start":
                _, t, alone = self.queue[j].popleft()
                cores.settle(g, self.t)
                if cores.running[g]:  # a time taken beside a mate's is not the device's own
                    cores.shared.update([t.id] + [o.id for o in cores.running[g].values()])
                cores.running[g][j] = t
                cores.left[t.id] = alone
                self.start[t.id] = self.t
                self._group_changed(g)
                continue
            if what == "notice":
                return [self._done(payload, j)]
            if payload != cores.version[g]:
                continue  # the group's sharing changed since: a later "end" replaced this one
            t = self._end(g, j)
            lag = self.known[j][0] if self.devices[j].outstanding > 1 else self.known[j][1]
            if lag > 0:  # the driver hears of it later: Ray stores the output (beside the next task, if queued)
                self._push(self.t + lag, "notice", j, (t, self.t))
                continue
            return [self._done((t, self.t), j)]
        if until is not None:
            self.t = max(self.t, until)
        return []

    def _end(self, g: int, j: int):
        cores = self.cores
        cores.settle(g, self.t)
        t = cores.running[g].pop(j)
        del cores.left[t.id]
        self._group_changed(g)
        self.busy[j] += self.t - self.start[t.id]
        self.free_at[j] = self.t + self.after[j]
        if self.queue[j]:
            self._push(max(self.free_at[j], self.queue[j][0][0]), "start", j)
        return t

    def _done(self, ended, j: int) -> Done:
        t, end = ended
        return Done(t, self.devices[j], self.start[t.id], end, alone=t.id not in self.cores.shared)


def simulate(
    tasks,
    devices: list[DeviceState],
    policy: Policy,
    model,
    actual=None,
    pool: bool = True,
    overhead: dict | None = None,
    notify: dict | None = None,
    cores: dict | None = None,
    arrivals: list | None = None,
) -> SimResult:
    """Run `policy` over `tasks` on `devices` with a clock; pool=False shows every device to the policy always.

    actual(task, device): seconds the task takes on that device alone (default: the model's prediction; only
    then is late binding off, as it would change nothing).
    overhead: device name -> seconds a device stays taken after each task; by default each device's
    DeviceState.overhead, which is also what the policies and the queue ends count, as in the runtime.
    notify: device name -> (busy, idle): seconds from a task's end on that device to the driver hearing of it,
    when the device goes straight on to a queued task (Ray then stores the output while the next one runs) and
    when it has nothing queued; none by default.
    cores: device name -> a key shared by the devices pinned to the same cores, which then share their speed
    (_Cores); by default each device's DeviceState.core_group (None: cores of its own).
    arrivals: a stream's [(time, tasks)] (hetero.scheduler.streams); none: every task is there at the start."""
    if cores is None:
        cores = {d.name: d.core_group for d in devices if d.core_group is not None}
    wall = time.perf_counter()
    given, actual = actual is not None, actual or (lambda t, d: predict(model, t, d))
    clock = Clock(devices, model, actual, overhead or {}, notify or {}, cores)
    rec = Driver(tasks, devices, policy, model, pooled=pool, late_binding=given, arrivals=arrivals).run(clock)
    return SimResult(
        policy.name,
        rec.makespan,
        rec.where,
        dict(clock.start),
        rec.end,
        {d.name: clock.busy[i] for i, d in enumerate(devices)},
        time.perf_counter() - wall,
    )
