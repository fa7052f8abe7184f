"""The scheduler's one driver loop, behind both the Ray runtime and the simulator (StarPU runs one core on a real
or a simulated clock the same way).

The driver keeps the ready set and the dependency counts, runs the placement pass (policy.order, place or assign,
late binding), and handles each task's end (what the perf model learns, the policy's `ended`, the device's queue
end, the children it releases). An executor supplies the rest:

    executor.now() -> seconds since the run's start, on the run's clock
    executor.send(task, device, predicted_s, transfer_s)    start it (a Ray actor call, or a simulated queue)
    executor.wait(until) -> [Done | Died]                    the next completions the driver hears of (>= 1),
                                                             or [] once the clock reaches `until` (an arrival)

A stream's requests arrive over time (open loop: `arrivals`, a request's tasks with no deps released at its
arrival time); a batch or a graph is all there at the start.

Devices are DeviceState objects (hetero.scheduler.device); `model` has predict(backend, device, case); a model
that learns also has add(backend, device, case, seconds) and history(backend, device, case).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from hetero.errors import HeteroError
from hetero.scheduler.costs import predict
from hetero.scheduler.device import DeviceState, kind
from hetero.scheduler.placement import place_task
from hetero.scheduler.pools import Pools


@dataclass
class Done:
    """A task ended on `device` and the driver hears of it now: it ran from `start` to `end` (run clock).
    alone: no device pinned to the same cores computed meanwhile, so its time is the device's own."""

    task: object
    device: DeviceState
    start: float
    end: float
    alone: bool = True


@dataclass
class Died:
    """`device` is gone: every task sent to it and not heard of as done runs again elsewhere."""

    device: DeviceState


@dataclass
class Record:
    """What a run did: task id -> device name, start and end (run clock); tasks sent again after a death."""

    where: dict = field(default_factory=dict)
    start: dict = field(default_factory=dict)
    end: dict = field(default_factory=dict)
    retries: int = 0
    dead: list = field(default_factory=list)

    @property
    def makespan(self) -> float:
        return max(self.end.values(), default=0.0)


def learn(model, device: DeviceState, task, seconds: float, alone: bool, predicted: float | None = None) -> None:
    """Teach the model a task's time, and how far it was from the `predicted` one it was sent with (the device's
    prediction error, hetero.scheduler.slips). A time taken while a device on the same cores computed holds that
    device's time slices too, not this device's speed: it is learnt only for a kind with no sample on the device
    yet (a rough time beats none, which would have the kind explored again on every task), and says nothing of
    the error. A model without add() (a fixed profile, a test's table) learns nothing."""
    if not hasattr(model, "add"):
        return
    if alone and predicted and hasattr(model, "add_error"):
        model.add_error(device.backend, device.device, predicted, seconds)
    if alone or model.history(device.backend, device.device, task.case) is None:
        model.add(device.backend, device.device, task.case, seconds)


class Driver:
    """One run of `policy` over `tasks` on `devices`.

    pooled: show a policy that is indifferent among identical devices (Policy.pooled) one device per pool on a
    set with no dependencies (Pools), so that a placement costs O(pools), not O(devices): the simulator's scale.
    late_binding: honour Policy.commit (a device is sent at most `commit` tasks; later placements on it are held
    and placed again after the next task ends). It changes decisions only where durations differ from
    predictions; the simulator leaves it off when they cannot, as each pass then places held tasks again."""

    def __init__(
        self,
        tasks,
        devices: list[DeviceState],
        policy,
        model,
        pooled: bool = False,
        late_binding: bool = True,
        arrivals: list | None = None,
    ):
        self.tasks, self.devices, self.policy, self.model = tasks, devices, policy, model
        self.arrivals = deque(sorted(arrivals or [], key=lambda a: a[0]))  # (time, [tasks with no deps])
        self.index = {d.name: i for i, d in enumerate(devices)}
        self.late_binding = late_binding
        self.commit = None  # Policy.commit as plan() set it, with late binding
        self.pool = pooled and not any(t.deps for t in tasks)
        self.record = Record()
        self._reset()

    def _reset(self) -> None:
        """A run's bookkeeping, empty: every device idle, every task with no deps ready."""
        for d in self.devices:
            d.reset()
        self.pools = None  # made once the policy has planned (Policy.pooled may depend on the tasks)
        self.children: dict = {t.id: [] for t in self.tasks}
        for t in self.tasks:
            for p in t.deps:
                self.children[p].append(t)
        self.waiting = {t.id: len(t.deps) for t in self.tasks}
        later = {t.id for _, ts in self.arrivals for t in ts}
        self.fresh = [t for t in self.tasks if not t.deps and t.id not in later]  # ready, not merged into `ready`
        self.ready: deque = deque()
        self.per_workload: dict = {}  # workload -> ready tasks of it, not sent
        self.running: dict = {}  # task id -> (task, device index, predicted seconds): sent, not heard of
        self.sent_as: dict = {}  # task id -> the model's prediction for it where sent (a model that learns)
        self.queued = [0.0] * len(self.devices)  # per device: predicted seconds of its running tasks
        self.committed = [0.0] * len(self.devices)  # per device: its queue end over the tasks actually sent
        self.holding: set = set()  # devices with placements held in the last pass
        self.alive = list(self.devices)

    def check_capable(self) -> None:
        for t in self.tasks:
            if not any(d.runs(t) for d in self.devices):
                raise HeteroError(
                    f"no device here runs task {t.id} ({t.label}); devices: "
                    + ", ".join(f"{d.name} ({', '.join(sorted(d.supports or []))})" for d in self.devices)
                )

    def run(self, executor) -> Record:
        """Place and run every task once; returns what ran where and when."""
        self.check_capable()
        self.policy.streaming = bool(self.arrivals)
        self.policy.plan(self.tasks, self.devices, self.model)
        self.commit = self.policy.commit if self.late_binding and not self.policy.pulls else None
        self.pools = Pools(self.devices) if self.pool and self.policy.pooled else None
        while len(self.record.end) < len(self.tasks):
            self.release(executor.now())
            self.place(executor)
            until = self.arrivals[0][0] if self.arrivals else None
            if not self.running and until is None:
                raise HeteroError(
                    f"policy {self.policy.name} placed none of {len(self.ready)} ready tasks and none is running"
                )
            for event in executor.wait(until):
                if isinstance(event, Died):
                    self.died(event.device)
                else:
                    self.ended(event, executor.now())
        return self.record

    def release(self, now: float) -> None:
        """Requests that have arrived by `now` join the ready set."""
        while self.arrivals and self.arrivals[0][0] <= now:
            self.fresh.extend(self.arrivals.popleft()[1])

    def view(self) -> list[DeviceState]:
        return self.pools.view() if self.pools else self.alive

    def place(self, executor) -> None:
        """One placement pass at executor.now(): the last pass's held placements are forgotten (this pass plans
        them again, knowing more), then a pulling policy assigns a task to each free slot, or ready tasks are
        offered one by one in the policy's order."""
        now = executor.now()
        if self.fresh:
            for t in self.fresh:
                self.per_workload[t.case.workload] = self.per_workload.get(t.case.workload, 0) + 1
            self.ready = deque(self.policy.order(list(self.ready) + self.fresh))
            self.fresh = []
        for j in self.holding:
            self.devices[j].queue_end = self.committed[j]
            if self.pools:
                self.pools.lowered(j)
        self.holding = set()
        self.policy.begin(now)
        if self.policy.pulls:
            if self.ready:
                for t, d in self.policy.assign(list(self.ready), self.view(), self.model, now):
                    _, p, tr, _ = place_task(
                        self.policy, t, self.view(), self.devices, self.model, now, self.record.where, None, device=d
                    )
                    self._send(executor, t, d, p, tr)
                    self.ready.remove(t)
            return
        self._offer(executor, now)

    def _offer(self, executor, now: float) -> None:
        """Ready tasks one by one. A workload the policy declined once this pass is not offered again (whether a
        policy places a task depends on its workload and the devices' state only); the pass ends once every
        workload waiting was declined, or, with late binding, once no device with a free slot wants a task
        (Policy.wants) or `lookahead` placements in a row were held."""
        declined, kept, held_in_row = set(), [], 0
        while self.ready and len(declined) < sum(1 for n in self.per_workload.values() if n):
            if self.commit and (held_in_row == self.policy.lookahead or self._none_wants(now)):
                break
            t = self.ready.popleft()
            if t.case.workload in declined:
                kept.append(t)
                continue
            got = place_task(self.policy, t, self.view(), self.devices, self.model, now, self.record.where, self.commit)
            if got is None:
                declined.add(t.case.workload)
                kept.append(t)
                continue
            d, p, tr, held = got
            if held:  # counted in d's queue for the rest of this pass, so later tasks see the whole plan
                kept.append(t)
                self.holding.add(self.index[d.name])
                held_in_row += 1
                continue
            held_in_row = 0
            self._send(executor, t, d, p, tr)
        self.ready.extendleft(reversed(kept))

    def _none_wants(self, now: float) -> bool:
        """No device shown with a free slot wants a ready task: the pass may end."""
        shown = self.view()
        return not any(d.outstanding < self.commit and self.policy.wants(d, shown, self.model, now) for d in shown)

    def _send(self, executor, t, d: DeviceState, p: float, tr: float) -> None:
        j = self.index[d.name]
        self.committed[j] = d.queue_end
        raw = predict(self.model, t, d)  # the model's own prediction (p adds the call overhead or estimates)
        self.policy.placed(t, d, raw)
        self.queued[j] += p
        self.running[t.id] = (t, j, p)
        if hasattr(self.model, "add_error"):
            self.sent_as[t.id] = raw
        d.outstanding += 1
        self.per_workload[t.case.workload] -= 1
        executor.send(t, d, p, tr)

    def ended(self, done: Done, now: float) -> None:
        """The driver hears at `now` that a task ended: the model learns its time, the policy hears of it, the
        device's queue end becomes now plus what it still has queued, and its children may become ready."""
        t, d = done.task, done.device
        _, j, p = self.running.pop(t.id)
        took = done.end - done.start
        learn(self.model, d, t, took, done.alone, self.sent_as.pop(t.id, None))
        self.policy.ended(t, d, took if done.alone else None)
        d.outstanding -= 1
        d.exploring.discard(kind(t))
        self.queued[j] -= p
        was, d.queue_end = d.queue_end, now + max(0.0, self.queued[j])
        self.committed[j] = d.queue_end
        if self.pools and (d.queue_end < was or d.outstanding == 0):
            self.pools.lowered(j)
        rec = self.record
        rec.where[t.id], rec.start[t.id], rec.end[t.id] = d.name, done.start, done.end
        for c in self.children[t.id]:
            self.waiting[c.id] -= 1
            if self.waiting[c.id] == 0:
                self.fresh.append(c)

    def died(self, device: DeviceState) -> None:
        """Every task sent to `device` and not done goes back to the ready set, to be placed on another."""
        device.alive = False
        self.alive = [d for d in self.devices if d.alive]
        self.record.dead.append(device.name)
        j = self.index[device.name]
        lost = [i for i, (_, k, _) in self.running.items() if k == j]
        for i in lost:
            self.fresh.append(self.running.pop(i)[0])
        self.queued[j], device.outstanding = 0.0, 0
        self.record.retries += len(lost)
        if not self.alive:
            raise HeteroError(f"every device died; last: {device.name}")
