"""Placement policies as plain objects with no Ray dependency, so a discrete-event simulator can reuse them.

    policy.plan(tasks, devices, model)          once per run, before any task is ready (HEFT plans here)
    policy.order(ready) -> ready                which ready task to place first (dmda, heft: highest rank first)
    policy.place(task, devices, model, now) -> DeviceState | None   (None: wait for a device to free up)
    policy.assign(ready, devices, model, now) -> [(task, device)]  a pulling policy (pulls = True) instead: each
                                                device with a free slot takes a ready task (StarPU's pop_task)

`devices` are DeviceState objects (the caller keeps queue_end = predicted time each queue drains, each task
counted as its predicted run plus the device's call overhead; `outstanding` = tasks submitted and not finished);
`model` is anything with predict(backend, device, case) -> seconds | None
(hetero.scheduler.perfmodel.PerfModel, or a synthetic table in tests); `task` has id, case, deps, nbytes and
resident (device name -> input bytes already there).
"""
from __future__ import annotations

import math
import random as _random
from dataclasses import dataclass, field

from hetero.errors import choices
from hetero.scheduler.lp import area_allocation


@dataclass
class DeviceState:
    name: str                      # unique label: 'numba', or 'numba@1' on the second node
    backend: str
    device: str                    # the Device's name: the perf model's key
    latency: float = 0.0           # seconds per transfer, measured once
    bandwidth: float = math.inf    # bytes per second, measured once
    supports: frozenset | None = None   # workloads it runs (None: all)
    overhead: float = 0.0          # seconds each task holds it beyond its run (the perf model's call overhead)
    queue_end: float = 0.0
    outstanding: int = 0
    alive: bool = True
    exploring: set = field(default_factory=set)   # task kinds in flight with no prediction yet
    # a key shared by the devices pinned to the same cores (bench.schedule --share-cores): they time-slice them,
    # together running as one device would; None: cores of its own, or none
    share: object = None

    def runs(self, task) -> bool:
        return self.alive and (self.supports is None or task.case.workload in self.supports)


def transfer(task, dev: DeviceState) -> float:
    missing = max(0.0, task.nbytes - getattr(task, "resident", {}).get(dev.name, 0.0))
    return (dev.latency + missing / dev.bandwidth) if missing else 0.0


_KIND_IDS: dict = {}     # (workload, params, dtype) -> a small int, the same for every task object of that kind


def kind(task) -> int:
    """The task's kind (workload, parameters, dtype) as a small int, cached on the task for its case. Policies
    key every table by it, up to ~60 lookups a placement: hashing the parameter tuple on each took a third of
    dmda's time per placement."""
    got = task.__dict__.get("_kind")
    if got is not None and got[0] is task.case:
        return got[1]
    c = task.case
    k = _KIND_IDS.setdefault((c.workload, c.params, c.dtype), len(_KIND_IDS))
    task.__dict__["_kind"] = (c, k)
    return k


def predict(model, task, dev: DeviceState) -> float | None:
    return model.predict(dev.backend, dev.device, task.case)


def estimate(model, task, devices) -> float:
    """A prediction for any device: the mean of the known ones (1 s when none is known; the first runs measure)."""
    known = [p for d in devices if d.runs(task) and (p := predict(model, task, d)) is not None]
    return sum(known) / len(known) if known else 1.0


def _seconds(model, task, dev, devices, p: float | None = None) -> float:
    """What a task holds `dev` for: its prediction there (`p` if the caller has it; the mean of the known ones if
    none) plus the call overhead."""
    p = predict(model, task, dev) if p is None else p
    return (p if p is not None else estimate(model, task, devices)) + dev.overhead


def capable(task, devices) -> list[DeviceState]:
    return [d for d in devices if d.runs(task)]


def finish_time(model, task, dev, devices, now, p: float | None = None) -> float:
    return max(dev.queue_end, now + transfer(task, dev)) + _seconds(model, task, dev, devices, p)


def upward_ranks(tasks, devices, model) -> dict:
    """HEFT's upward rank: mean predicted cost over capable devices + max over successors (comm ignored)."""
    children: dict = {t.id: [] for t in tasks}
    for t in tasks:
        for d in t.deps:
            children[d].append(t.id)
    by_id = {t.id: t for t in tasks}
    per_kind: dict = {}                     # estimate depends only on the task's kind: once per kind
    cost = {t.id: per_kind[k] if (k := kind(t)) in per_kind else per_kind.setdefault(k, estimate(model, t, devices))
            for t in tasks}
    rank: dict = {}
    for t in reversed(topological(tasks)):
        rank[t.id] = cost[t.id] + max((rank[c] for c in children[t.id]), default=0.0)
    return {by_id[i].id: r for i, r in rank.items()}


def pool_of(d: DeviceState) -> tuple:
    return (d.backend, d.device, d.supports)


def lp_quota(tasks, devices, model) -> dict:
    """pool -> {kind: tasks of that kind the pool should run}: the LP area relaxation's allocation
    (hetero.scheduler.lp) from the model's predictions plus call overheads, rounded to whole tasks (largest
    remainders). {} while some device has a kind unmeasured (dmda explores it first)."""
    from collections import Counter

    pools: dict = {}
    for d in devices:
        pools.setdefault(pool_of(d), []).append(d)
    counts = Counter(kind(t) for t in tasks)
    sample = {kind(t): t for t in tasks}
    times: list = []
    for members in pools.values():
        d = members[0]
        per = {}
        for k, t in sample.items():
            p = predict(model, t, d) if d.runs(t) else math.inf
            if p is None:
                return {}
            per[k] = p + d.overhead
        times.append((len(members), per))
    _, alloc = area_allocation(counts, times, shared_groups(devices, list(pools)))
    if not alloc:
        return {}
    quota = {key: {} for key in pools}
    keys = list(pools)
    for k, n in counts.items():
        share = [(a.get(k, 0.0), i) for i, a in enumerate(alloc)]
        whole = {i: int(math.floor(x + 1e-9)) for x, i in share}
        left = n - sum(whole.values())
        for x, i in sorted(share, key=lambda s: -(s[0] - math.floor(s[0] + 1e-9)))[:left]:
            whole[i] += 1
        for i, m in whole.items():
            if m:
                quota[keys[i]][k] = m
    return quota


def shared_pools(devices) -> dict:
    """frozenset of pools (pool_of keys) whose devices time-slice one set of cores -> how many such core sets
    there are (one per node, say)."""
    on: dict = {}
    for d in devices:
        if d.share is not None:
            on.setdefault(d.share, set()).add(pool_of(d))
    sets: dict = {}
    for pools in on.values():
        if len(pools) > 1:
            sets[frozenset(pools)] = sets.get(frozenset(pools), 0) + 1
    return sets


def shared_groups(devices, pools: list) -> list[tuple[list[int], float]]:
    """area_allocation's groups: per set of pools (indices into `pools`) sharing cores, its core sets' count,
    each worth one device."""
    return [(sorted(pools.index(p) for p in group), float(n)) for group, n in shared_pools(devices).items()]


def topological(tasks) -> list:
    done, out, by_id = set(), [], {t.id: t for t in tasks}
    pending = list(tasks)
    while pending:
        rest = []
        for t in pending:
            if all(d in done for d in t.deps):
                done.add(t.id)
                out.append(t)
            else:
                rest.append(t)
        if len(rest) == len(pending):
            raise ValueError(f"task graph has a cycle through task {rest[0].id}")
        pending = rest
    assert len(out) == len(by_id)
    return out


class Policy:
    name = "policy"
    # when its placement rule last changed (UTC): a replay of a run made before then simulates a different
    # policy from the one that ran, and says so (bench.simulate --replay); None: unchanged since runs were kept
    revised: str | None = None
    pooled = False   # True: indifferent among identical devices, so the simulator may show one per pool
    # None: every placement is final and sent to the device at once. N: a device is sent at most N tasks at a time;
    # a task placed on a device that already holds N is held back and placed again after the next task ends,
    # when the queues are known from measurements, not predictions (late binding: prediction errors do not pile
    # up in a long queue). The runtime honours it; so does the simulator where durations differ from predictions.
    commit: int | None = None
    # False: the caller offers ready tasks one by one (order, then place). True: it asks assign() once a pass
    # for (task, device) pairs, each device with a free slot (fewer than `commit` tasks) taking the task it
    # should run next, as StarPU's pull-based schedulers do in pop_task.
    pulls = False
    # with `commit`: a pass stops after this many placements in a row were held back (None: it goes on through
    # every ready task). A held placement only informs the pass's later ones, and otherwise a pass ends early only
    # once every device holds `commit` tasks: a device the policy gives nothing would keep every pass going
    # through every ready task.
    lookahead: int | None = None
    # the most tasks the simulator gives it (bench.simulate skips it on larger sets, saying so): a pass that looks
    # at every ready task for every free slot is O(tasks) a task end, O(tasks^2) a run
    max_sim_tasks: int | None = None

    def plan(self, tasks, devices, model) -> None:
        pass

    def assign(self, ready: list, devices: list, model, now: float) -> list:
        """Pulling policies: rounds in which each device with a free slot, the one whose queue drains first
        first, takes one ready task (take()), until none takes any. The caller sends the pairs in order."""
        left, out = list(ready), []
        slots = {d.name: self.commit - d.outstanding for d in devices if d.alive}
        ends = {d.name: d.queue_end for d in devices}     # place_task counts the pairs when the caller sends them
        while left:
            took = False
            for d in sorted((d for d in devices if slots.get(d.name, 0) > 0), key=lambda d: max(d.queue_end, now)):
                t = self.take(d, left, devices, model, now)
                if t is None:
                    continue
                left.remove(t)
                out.append((t, d))
                slots[d.name] -= 1
                # counted in its queue for the rest of this pass, as place_task will count it
                d.queue_end = max(d.queue_end, now) + _seconds(model, t, d, devices)
                took = True
            if not took:
                break
        for d in devices:
            d.queue_end = ends[d.name]
        return out

    def take(self, device: DeviceState, ready: list, devices: list, model, now: float):
        raise NotImplementedError

    def order(self, ready: list) -> list:
        return ready

    def place(self, task, devices, model, now) -> DeviceState | None:
        raise NotImplementedError

    def begin(self, now: float) -> None:
        """A placement pass starts: the last pass's held-back placements are forgotten (the caller resets the
        queue ends to the tasks it sent), and predictions may have changed since."""

    def placed(self, task, device: DeviceState) -> None:
        """The caller sent `task` to `device` (place() may be asked again for a task it then held back)."""

    def ended(self, task, device: DeviceState, seconds: float | None = None) -> None:
        """`task` ended on `device` after `seconds` and the model has learnt its time: predictions for that
        device may change."""

    def wants(self, device: DeviceState, devices: list, model, now: float) -> bool:
        """With `commit`, before each placement of a pass: False when `device`, which has a free slot, would take
        none of the ready tasks as things stand in this pass, so the pass may end without placing them all again
        (the caller ends it once no device with a free slot wants one). True unless the policy can tell."""
        return True


class Eager(Policy):
    """The first idle device that runs the task; none idle: wait."""
    name = "eager"
    pooled = True

    def place(self, task, devices, model, now):
        return next((d for d in capable(task, devices) if d.outstanding == 0), None)


class RoundRobin(Policy):
    name = "round-robin"

    def __init__(self):
        self.next = 0

    def place(self, task, devices, model, now):
        n = len(devices)
        for i in range(n):
            d = devices[(self.next + i) % n]
            if d.runs(task):
                self.next = (self.next + i + 1) % n
                return d
        return None


class Random(Policy):
    name = "random"

    def __init__(self, seed: int = 0):
        self.rng = _random.Random(seed)

    def place(self, task, devices, model, now):
        for _ in range(8):   # rejection sampling is uniform over capable devices and O(1) when most are capable
            d = devices[self.rng.randrange(len(devices))] if devices else None
            if d is not None and d.runs(task):
                return d
        c = capable(task, devices)
        return self.rng.choice(c) if c else None


class Single(Policy):
    """Everything on the one device the model says finishes the whole set soonest (tasks it cannot run go to
    the fastest device that can)."""
    name = "single"

    def __init__(self):
        self.best: DeviceState | None = None

    def plan(self, tasks, devices, model):
        totals: dict = {}    # identical devices have identical totals: once per (backend, device, workloads)

        def total(d):   # running more of the set first, then the least predicted time
            key = (d.backend, d.device, d.supports)
            if key not in totals:
                ps = [predict(model, t, d) for t in tasks if d.runs(t)]
                totals[key] = (-len(ps), math.inf if None in ps else sum(ps))
            return totals[key]
        live = [d for d in devices if d.alive]
        self.best = min(live, key=total) if live else None

    def place(self, task, devices, model, now):
        if self.best is not None and self.best.runs(task):   # runs() is False once the device died
            return self.best
        c = capable(task, devices)
        return min(c, key=lambda d: predict(model, task, d) or math.inf, default=None)


# On a batch, dmda scales a device's predictions by how far off they have been on it in this run: a mean of
# measured / predicted over its tasks, each new one weighing DRIFT, each ratio clipped to [1/DRIFT_CLIP,
# DRIFT_CLIP]. The perf model learns each task kind by itself, and most kinds of mixed:40 come 1-4 times, so a
# device running faster or slower as a whole than in the runs the model learnt from (the 2-core VM varies
# 10-40% from run to run) stayed mispredicted: in schedule-numba-opencl-fpga-zen4-wants-second numba ran
# mixed:40's kinds at about 0.65x their predictions, and dmda sent opencl a 0.36-s attention it finished 0.48 s
# after numba's last task. In replays of the committed Zen 4 mixed:40 runs with fpga-emu, 0.1 shortened that run
# by 14% and the others by up to 4.5%, but one by 3.5% longer (0.05 and 0.2 did much the same); the numba+opencl
# runs did not move. Graphs keep the model's predictions: replays showed no gain there.
DRIFT = 0.1
DRIFT_CLIP = 2.0


class Dmda(Policy):
    """StarPU's dmda: minimise alpha*(finish - best finish) + beta*transfer; finish = max(queue_end, now +
    transfer) + predicted compute. A device with no prediction for the task kind gets it first (one at a time),
    so it is measured. Ready tasks are placed highest upward rank first (StarPU's dmdas with rank priorities).

    On a batch of independent tasks it is also guided by the LP area relaxation (lp_quota; devices that
    time-slice shared cores count as one there): a task goes to the earliest-finishing device among those whose
    pool still has a share of its kind, unless another pool takes it and so shortens the projected makespan
    (_by_quota), which is how a pool done with its share takes work at the end, and how the plan bends when its
    predictions prove wrong. Greedy earliest finish alone hands a slow device the long tasks it is much slower at
    once the fast device's queue fills (NumPy's attention takes 2.5-7x numba's in results/cpu-epyc-zen5-2core),
    while work it runs nearly as fast (matmul, 1.1-1.4x) waits. In the committed Zen 5 schedule run, dmda's gap
    on mixed:40 is 1.02 and HEFT's (plain earliest finish) 1.24. Graphs keep the plain rule (there the LP
    ignores the dependencies that decide the order), except that a device sharing cores finishes no sooner than
    the cores have run its mates' queues too (_sliced)."""
    name = "dmda"
    pooled = True
    revised = "2026-12-02T08:00+00:00"    # graphs: a shared-core device's finish counts its mates' queues
    # On a batch, one task running and one waiting, which is all a device actor takes in at once (late binding).
    # On a graph, every ready task is sent at once: there a device's next task is often a child released by the
    # task just ended, and the round trip through the driver (4.9-5.8 ms median in the committed Zen 5 run's
    # graphs, simulate.notify_latency; 7-15 ms before numba's kernels released the GIL) outlasts short tasks (gan:8
    # has 2-ms ones); in trials on that VM sending at once shortened the graphs.
    BATCH_COMMIT = 2
    # In replays of the committed Zen 4 mixed:40 runs, 8 changed no makespan by more than 1% and halved the
    # placements where fpga-emu, given nothing, always has a free slot (2,120 -> 1,049 over three runs); 4 made
    # some 10-50% longer.
    lookahead = 8

    def __init__(self, alpha: float = 1.0, beta: float = 1.0):
        self.alpha, self.beta, self.rank, self.quota = alpha, beta, {}, {}
        self._kinds, self._members, self._sample, self._groups = {}, {}, {}, []
        self._reset(None)

    def _reset(self, model) -> None:
        """A run's bookkeeping, empty (see the comment below plan)."""
        self._held, self._tentative, self._preds, self._work = {}, {}, {}, None
        self._quick, self._costs, self._sent, self._resent = {}, {}, set(), False
        self._model, self._drift, self._raw = model, {}, {}

    def plan(self, tasks, devices, model):
        graph = any(t.deps for t in tasks)
        self.rank = upward_ranks(tasks, devices, model)
        self.quota = {} if graph else lp_quota(tasks, devices, model)
        self._kinds = {kind(t): t for t in tasks}           # a task of each kind, to price a share
        self._members, self._sample = {}, {}                 # pool -> its device count, one of its devices
        for d in devices:
            self._members[pool_of(d)] = self._members.get(pool_of(d), 0) + 1
            self._sample.setdefault(pool_of(d), d)
        self._groups = list(shared_pools(devices))       # sets of pools whose devices share cores
        self._reset(model)
        self.commit = None if graph else self.BATCH_COMMIT

    # Bookkeeping kept across passes, each piece brought up to date as it changes rather than recomputed in
    # every pass (a pass places up to `lookahead` tasks more than it sends; at ~50 µs a placement, the cost of a
    # pass went mostly to pricing every pool's share again):
    #   held: (pool, kind) -> this pass's placements held back on it; tentative: task id -> its (pool, kind)
    #   preds: (backend, device, kind) -> the model's prediction (the drift apart), dropped for a device when one of
    #   its tasks of that workload and dtype ends
    #   work: pool -> [predicted seconds, task count] of the share it has left (quota less held), None until
    #   first needed; the count prices the per-call overhead at its current value.

    def begin(self, now):
        for key, n in list(self._held.items()):      # the last pass's held placements are forgotten
            if n:
                self._move(key, held=-n)
        self._held, self._tentative = {}, {}

    def ended(self, task, device, seconds=None):
        drop = (device.backend, device.device)
        raw = self._raw.pop(task.id, None)
        if self.quota and seconds is not None and raw:
            # how far off the model is on this device in this run, over every kind (DRIFT)
            ratio = min(DRIFT_CLIP, max(1 / DRIFT_CLIP, seconds / raw))
            self._drift[drop] = (1 - DRIFT) * self._drift.get(drop, 1.0) + DRIFT * ratio
        # the model learnt this kind's time on the device, and with it its FLOP fit for the workload and dtype,
        # which predicts the kinds it has not measured: those predictions change, the rest only by the drift
        same = self._family(kind(task))
        self._preds = {key: v for key, v in self._preds.items() if key[:2] != drop or self._family(key[2]) != same}
        pool = pool_of(device)
        self._costs.pop(pool, None)
        for p in [p for p in self._quick if p == pool or any(p in g and pool in g for g in self._groups)]:
            del self._quick[p]
        if self._work is not None and pool in self._work:
            self._work[pool] = self._price_share(pool)

    def placed(self, task, device):
        self._resent |= task.id in self._sent       # sent again: its device died
        self._sent.add(task.id)
        if self.quota:
            self._raw[task.id] = predict(self._model, task, device)
        got = self._tentative.pop(task.id, None)      # sent: it comes off the quota itself, no longer held
        if got is not None:
            self._move(got, held=-1)
        if self.quota:
            # off the share it was charged to when placed: its own pool's, or the largest one's for a task
            # handed to a pool with none of that kind left
            k = kind(task)
            pool = got[0] if got is not None else self._owner(k, device)
            if self.quota.get(pool, {}).get(k, 0) > 0:
                self._move((pool, k), quota=-1)

    def _move(self, key, held: int = 0, quota: int = 0) -> None:
        """Change a (pool, kind)'s held count or quota, and the pool's share-left work with it."""
        pool, k = key
        before = max(0, self._left(pool, k))
        if held:
            self._held[key] = self._held.get(key, 0) + held
        if quota:
            self.quota[pool][k] += quota
        after = max(0, self._left(pool, k))
        if self._work is not None and after != before and pool in self._work:
            w = self._work[pool]
            w[0] += (after - before) * self._price(pool, k)
            w[1] += after - before

    def _price_share(self, pool) -> list:
        """[predicted seconds, tasks] of what `pool` has left of its share."""
        w = [0.0, 0]
        for k in self.quota.get(pool, {}):
            if (n := self._left(pool, k)) > 0:
                w[0] += n * self._price(pool, k)
                w[1] += n
        return w

    def order(self, ready):
        return sorted(ready, key=lambda t: -self.rank.get(t.id, 0.0))

    def place(self, task, devices, model, now):
        c = capable(task, devices)
        k = kind(task)
        if not self.quota:    # with a quota every pool has a prediction for every kind (lp_quota)
            for d in c:
                if self._predict(model, task, d, k) is None and k not in d.exploring:
                    d.exploring.add(k)
                    return d
        if not c:
            return None
        if self.quota:
            return self._by_quota(task, k, c, devices, model, now)
        fin = self._finishes(task, k, c, devices, model, now)
        return self._earliest(task, k, c, devices, model, now, _sliced(fin, c, devices, now))

    def _predict(self, model, task, d, k):
        """The model's prediction times the device's drift. The model's is cached until the device ends a task
        of the same workload and dtype (ended()): a pass asks for 20-25 of them a task end on mixed:40 with
        fpga-emu, and the model's lookup (a history keyed by the shape's text, or a FLOP fit) took a tenth of
        the driver's time a task in a (scratch) cProfile of that run on Zen 3."""
        key = (d.backend, d.device, k)
        got = self._preds.get(key, self)       # self: not asked yet (None is a prediction: unmeasured)
        if got is self:
            got = self._preds[key] = predict(model, task, d)
        return got * self._drift.get(key[:2], 1.0) if got is not None else None

    def _family(self, k) -> tuple:
        """(workload, dtype) of kind k: what the model's FLOP fit for it is keyed by."""
        case = self._kinds[k].case
        return case.workload, case.dtype

    def _finishes(self, task, k, c, devices, model, now) -> dict:
        """device name -> (predicted finish, transfer seconds) of `task` on each of `c`."""
        out = {}
        for d in c:
            tr = transfer(task, d)
            p = self._predict(model, task, d, k)
            out[d.name] = (max(d.queue_end, now + tr) + _seconds(model, task, d, devices, p), tr)
        return out

    def _earliest(self, task, k, c, devices, model, now, fin: dict | None = None):
        fin = fin or self._finishes(task, k, c, devices, model, now)
        best = min(fin[d.name][0] for d in c)
        return min(c, key=lambda d: self.alpha * (fin[d.name][0] - best) + self.beta * fin[d.name][1])

    def _by_quota(self, task, k, c, devices, model, now):
        """The earliest finish among the devices whose pool has a share of this kind left, unless handing the
        task to another pool shortens the projected makespan: the latest over pools of its first device's queue
        end plus an even part of the pool's unplaced share at today's predictions (the LP's plan as it now
        stands). The quota alone would keep a device to its share when its tasks run longer than planned, or to
        a share rounded up to one long task (an LP share of 0.7 of a 2.4-s matmul gave fpga-emu all of it, and
        schedule-numba-opencl-fpga-zen4's dmda mixed:40 took 3.41 s against numba alone's 2.02 s). Pools, not
        devices, so that the simulator's one-device-per-pool view changes no decision."""
        left = {}
        for d in c:
            if (pool := pool_of(d)) not in left:
                left[pool] = self._left(pool, k)
        share = [d for d in c if left[pool_of(d)] > 0]
        fin = self._finishes(task, k, c, devices, model, now)
        best = self._earliest(task, k, share or c, devices, model, now, fin)
        owner = self._owner(k, best)
        if share and len(share) < len(c):
            first = _first_free(devices)
            ends = self._projected(first, model, now, devices)
            cut = (self._price(owner, k) + self._sample[owner].overhead) / self._members[owner]
            span, moved = self._span(ends, now), None
            for pool, d in (first if len(c) == len(devices) else _first_free(c)).items():
                if left[pool] > 0:
                    continue
                # d takes it: its pool's end grows by the task, the owner pool's unplaced share shrinks by it
                new = dict(ends)
                new[owner] -= cut
                new[pool] += fin[d.name][0] - max(d.queue_end, now)
                if (s := self._span(new, now)) < span - 1e-9:
                    moved, span = d, s
            if moved is not None:
                best = moved      # charged to `owner`, the pool whose share it came from
        self._charge(task, k, owner)
        return best

    def wants(self, device, devices, model, now):
        """False when `device`'s pool has none of its share left and no task could move to it: whatever it took
        would end no earlier than the projected makespan, on the pool or on the cores it shares (_by_quota moves
        a task only to shorten it). That holds until the next task ends: a placement, sent or held, leaves a
        one-device pool's projected end as it was (its queue grows by what its share shrinks). It ends the passes
        in which only such a device has a free slot, as fpga-emu on numba's core always has: they placed
        `lookahead` tasks more each (8 of ~9 placements a task end on mixed:40), and, asked only after a held
        placement, one more each (3.6 placements a sent task in a scratch profile of that run on Zen 3)."""
        pool = pool_of(device)
        if not self.quota or self._work is None or self._resent or self._work.get(pool, (0.0, 0))[1] > 0 \
                or {pool_of(d) for d in devices} != set(self._members):
            return True      # it has a share left; or a task was sent twice (a device died): EFT may place it
        first = _first_free(devices)
        ends = self._projected(first, model, now, devices)
        span = self._span(ends, now) - 1e-9
        alone, shared = self._quickest(pool)
        if ends[pool] + alone >= span:
            return False
        for group in self._groups:
            if pool in group and now + sum(ends[q] - now for q in group if q in ends) + shared[group] >= span:
                return False
        return True

    def _quickest(self, pool) -> tuple[float, dict]:
        """(the least a task adds to `pool`'s end, {group of shared-core pools with it: the least it adds to
        their summed work, a group-mate's share shrinking by its own time for the kind}), at current
        predictions; the lower bounds wants() tests against the projected makespan."""
        if pool not in self._quick:
            add = self._cost(pool)
            shared = {}
            for group in self._groups:
                if pool in group:
                    mates = [(self._cost(q), self._members[q]) for q in group if q != pool and q in self._sample]
                    shared[group] = min((a - max(0.0, max(c.get(k, 0.0) / n for c, n in mates))
                                         for k, a in add.items()), default=math.inf)
            self._quick[pool] = (min(add.values(), default=math.inf), shared)
        return self._quick[pool]

    def _cost(self, pool) -> dict:
        """kind -> what a task of it adds to one of `pool`'s devices (prediction plus call overhead), for the kinds
        the pool runs; kept until one of the pool's tasks ends (ended()), when predictions there change. With
        fpga-emu on numba's core, wants() asks for both pools' every kind after each task end (~40 predictions)."""
        if pool not in self._costs:
            d = self._sample[pool]
            self._costs[pool] = {k: self._price(pool, k) + d.overhead for k, t in self._kinds.items() if d.runs(t)}
        return self._costs[pool]

    def _left(self, pool, k) -> int:
        """Tasks of kind k still to place on `pool`: its share less this pass's placements held back on it."""
        return self.quota.get(pool, {}).get(k, 0) - self._held.get((pool, k), 0)

    def _owner(self, k, device):
        """The pool a placement on `device` comes off: its own while it has a share of k, else the largest one's."""
        mine = pool_of(device)
        if self._left(mine, k) > 0:
            return mine
        return max(self.quota, key=lambda p: self._left(p, k))

    def _charge(self, task, k, pool) -> None:
        prev = self._tentative.pop(task.id, None)     # placed again in this pass: its last placement is undone
        if prev is not None:
            self._move(prev, held=-1)
        key = (pool, k)
        self._move(key, held=1)
        self._tentative[task.id] = key

    def _price(self, pool, k) -> float:
        """Predicted seconds of a kind-k task on one of `pool`'s devices, its call overhead apart (in quota mode
        every kind has a prediction on every pool that runs it: lp_quota returns {} until then)."""
        return self._predict(self._model, self._kinds[k], self._sample[pool], k) or 0.0

    def _span(self, ends: dict, now: float) -> float:
        """The projected makespan: the latest pool end, or later where pools time-slice shared cores (their
        work adds up: a task on fpga-emu, computed on numba's core, delays numba's queue by its length)."""
        span = max(ends.values())
        for pools in self._groups:
            span = max(span, now + sum(ends[p] - now for p in pools if p in ends))
        return span

    def _projected(self, first: dict, model, now, devices) -> dict:
        """pool -> predicted end of its first-free device's queue plus an even part of its unplaced share."""
        if self._work is None:
            self._model = model
            self._work = {pool: self._price_share(pool) for pool in self.quota}
        out = {}
        for pool, d in first.items():
            w = self._work.get(pool)
            out[pool] = max(d.queue_end, now) + ((w[0] + w[1] * self._sample[pool].overhead) / self._members[pool]
                                                 if w else 0.0)
        return out


def _sliced(fin: dict, c: list, devices: list, now: float) -> dict:
    """`fin` (device name -> (finish, transfer)) for devices that time-slice their cores with others: a task there
    ends no sooner than the cores have also run what their mates have queued. On gan:8 in
    schedule-numba-opencl-fpga-zen5-drift, plain earliest finish sent a generator conv to fpga-emu, idle on numba's
    core (85 ms predicted, 259 ms measured while numba ran its queue), and dmda's gap was 1.42 against
    heteroprio's 1.27. dmda's batch projection (_span) counts the sharing in its own way."""
    out = dict(fin)
    for d in c:
        if d.share is None:
            continue
        mates = sum(max(0.0, e.queue_end - now) for e in devices if e is not d and e.alive and e.share == d.share)
        if mates:
            end, tr = fin[d.name]
            out[d.name] = (end + mates, tr)
    return out


def _first_free(devices) -> dict:
    """pool -> its alive device whose queue drains first (what the simulator's pooled view shows of it)."""
    out: dict = {}
    for d in devices:
        if d.alive and ((o := out.get(pool_of(d))) is None or d.queue_end < o.queue_end):
            out[pool_of(d)] = d
    return out


class Heft(Policy):
    """HEFT (Topcuoglu et al. 2002): tasks by decreasing upward rank, each on the device with the earliest
    finish time, inserted into the first idle gap that fits. The plan is static; a device that dies, or a task
    the plan never saw, falls back to the earliest predicted finish now."""
    name = "heft"

    def __init__(self):
        self.rank, self.assign = {}, {}

    def plan(self, tasks, devices, model):
        self.rank = upward_ranks(tasks, devices, model)
        slots = {d.name: [] for d in devices}        # sorted (start, end) per device
        end, where = {}, {}
        by_id = {t.id: t for t in tasks}
        for t in sorted(tasks, key=lambda t: -self.rank[t.id]):   # rank order is a topological order
            best = None
            for d in capable(t, devices):
                ready = max((end[p] + (transfer(by_id[p], d) if where[p] != d.name else 0.0)
                             for p in t.deps), default=0.0)
                p = predict(model, t, d)
                dur = (p if p is not None else estimate(model, t, devices)) + d.overhead
                start = _first_gap(slots[d.name], ready, dur)
                if best is None or start + dur < best[0]:
                    best = (start + dur, start, d.name)
            if best is None:
                continue
            end[t.id], where[t.id] = best[0], best[2]
            s = slots[best[2]]
            s.append((best[1], best[0]))
            s.sort()
        self.assign = where

    def order(self, ready):
        return sorted(ready, key=lambda t: -self.rank.get(t.id, 0.0))

    def place(self, task, devices, model, now):
        want = self.assign.get(task.id)
        mine = [d for d in devices if d.name == want and d.runs(task)]
        if mine:
            return mine[0]
        c = capable(task, devices)
        return min(c, key=lambda d: finish_time(model, task, d, devices, now), default=None)


def place_task(policy: Policy, task, shown: list, every: list, model, now: float, where: dict,
               commit: int | None, device: DeviceState | None = None):
    """One placement step, as the runtime (hetero.scheduler.runtime.execute) and the simulator
    (hetero.scheduler.simulate.simulate) both take it: note where the task's inputs already are (where: task id ->
    device name), ask the policy for one of the `shown` devices, add the task's predicted seconds (the mean over
    `every` device when this one has none, plus its per-call overhead) to that device's queue end, and say whether
    the task is held back (late binding: the device already has `commit` tasks). A held task stays ready; a device
    it was being explored on stays marked. Returns None when the policy declines, else (device, predicted seconds,
    transfer seconds, held). `device`: the one a pulling policy's assign() chose (never held)."""
    if task.deps:
        task.resident = {}
        for p in task.deps:
            task.resident[where[p]] = task.resident.get(where[p], 0.0) + task.nbytes / len(task.deps)
    exploring = {d.name for d in shown if kind(task) in d.exploring} if commit else ()
    d = device or policy.place(task, shown, model, now)
    if d is None:
        return None
    p = _seconds(model, task, d, every)
    tr = transfer(task, d)
    d.queue_end = max(d.queue_end, now + tr) + p
    held = device is None and bool(commit) and d.outstanding >= commit
    if held and d.name not in exploring:
        d.exploring.discard(kind(task))     # place() marked it explored; held, it was not: explore it next pass
    return d, p, tr, held


def _first_gap(slots, ready, dur):
    t = ready
    for s, e in slots:
        if t + dur <= s:
            return t
        t = max(t, e)
    return t


def _registry() -> dict:
    """name -> policy class. heteroprio lives in its own module, which builds on Policy here, so it is imported
    when first asked for rather than at the top (either module may be imported first)."""
    from hetero.scheduler.heteroprio import HeteroPrio

    return {p.name: p for p in (Dmda, Heft, HeteroPrio, Eager, RoundRobin, Random, Single)}


def __getattr__(name):      # policies.POLICIES, built on first use (PEP 562)
    if name == "POLICIES":
        return _registry()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make(name: str, seed: int = 0) -> Policy:
    known = _registry()
    if name not in known:
        raise choices("policy", name, list(known) + ["all"])
    return known[name](seed) if name == "random" else known[name]()
