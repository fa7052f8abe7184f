"""The LP area relaxation's shares for dmda on a batch: how many tasks of each kind each pool of identical
devices should run (hetero.scheduler.lp), and the pools that time-slice shared cores."""

from __future__ import annotations

import math
from collections import Counter

from hetero.scheduler.costs import predict
from hetero.scheduler.device import DeviceState, kind
from hetero.scheduler.lp import area_allocation


def pool_of(d: DeviceState) -> tuple:
    return (d.backend, d.device, d.supports)


def lp_quota(tasks, devices, model) -> dict:
    """pool -> {kind: tasks of that kind the pool should run}: the LP area relaxation's allocation
    (hetero.scheduler.lp) from the model's predictions plus call overheads, rounded to whole tasks (largest
    remainders). {} while some device has a kind unmeasured (dmda explores it first)."""
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
        for _x, i in sorted(share, key=lambda s: -(s[0] - math.floor(s[0] + 1e-9)))[:left]:
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
        if d.core_group is not None:
            on.setdefault(d.core_group, set()).add(pool_of(d))
    sets: dict = {}
    for pools in on.values():
        if len(pools) > 1:
            sets[frozenset(pools)] = sets.get(frozenset(pools), 0) + 1
    return sets


def shared_groups(devices, pools: list) -> list[tuple[list[int], float]]:
    """area_allocation's groups: per set of pools (indices into `pools`) sharing cores, its core sets' count,
    each worth one device."""
    return [(sorted(pools.index(p) for p in group), float(n)) for group, n in shared_pools(devices).items()]


def first_free(devices) -> dict:
    """pool -> its alive device whose queue drains first (what the simulator's pooled view shows of it)."""
    out: dict = {}
    for d in devices:
        if d.alive and ((o := out.get(pool_of(d))) is None or d.queue_end < o.queue_end):
            out[pool_of(d)] = d
    return out


class Shares:
    """dmda's books on a batch: each pool's LP share (quota: pool -> kind -> tasks), what is left of it as tasks
    are sent, this pass's held placements, and each pool's projected end at current predictions.

    Each piece is brought up to date as it changes rather than recomputed every pass (a pass places up to
    `lookahead` tasks more than it sends, and pricing every pool's share again dominated a pass's cost):
      held: (pool, kind) -> this pass's placements held back on it; tentative: task id -> its (pool, kind)
      work: pool -> [predicted seconds, task count] of the share it has left (quota less held), None until first
      needed; the count prices the per-call overhead at its current value
      costs, quick: per pool, what a task of each kind adds to it, and the least (wants()'s lower bounds),
      kept until one of the pool's tasks ends.
    price(pool, kind) -> predicted seconds of a task of that kind on one of the pool's devices (dmda's, drift
    included), its call overhead apart."""

    def __init__(self, quota: dict, kinds: dict, devices: list, price):
        self.quota, self.kinds, self.price = quota, kinds, price
        self.members, self.sample = {}, {}  # pool -> its device count, one of its devices
        for d in devices:
            self.members[pool_of(d)] = self.members.get(pool_of(d), 0) + 1
            self.sample.setdefault(pool_of(d), d)
        self.groups = list(shared_pools(devices))  # sets of pools whose devices share cores
        self.held, self.tentative, self.work, self.costs, self.quick = {}, {}, None, {}, {}

    def begin(self) -> None:
        """A pass starts: the last pass's held placements are forgotten."""
        for key, n in list(self.held.items()):
            if n:
                self.move(key, held=-n)
        self.held, self.tentative = {}, {}

    def ended(self, pool) -> None:
        """One of `pool`'s tasks ended: predictions there changed, and with them its prices."""
        self.costs.pop(pool, None)
        for p in [p for p in self.quick if p == pool or any(p in g and pool in g for g in self.groups)]:
            del self.quick[p]
        if self.work is not None and pool in self.work:
            self.work[pool] = self.price_share(pool)

    def sent(self, task, k, device) -> None:
        """`task` (kind k) was sent to `device`: off the share it was charged to when placed (its own pool's, or
        the largest one's for a task handed to a pool with none of that kind left), and no longer held."""
        got = self.tentative.pop(task.id, None)
        if got is not None:
            self.move(got, held=-1)
        pool = got[0] if got is not None else self.owner(k, device)
        if self.quota.get(pool, {}).get(k, 0) > 0:
            self.move((pool, k), quota=-1)

    def left(self, pool, k) -> int:
        """Tasks of kind k still to place on `pool`: its share less this pass's placements held back on it."""
        return self.quota.get(pool, {}).get(k, 0) - self.held.get((pool, k), 0)

    def owner(self, k, device):
        """The pool a placement on `device` comes off: its own while it has a share of k, else the largest one's."""
        mine = pool_of(device)
        if self.left(mine, k) > 0:
            return mine
        return max(self.quota, key=lambda p: self.left(p, k))

    def charge(self, task, k, pool) -> None:
        """A placement of `task` this pass, held against `pool`'s share (a task placed again: its last undone)."""
        prev = self.tentative.pop(task.id, None)
        if prev is not None:
            self.move(prev, held=-1)
        self.move((pool, k), held=1)
        self.tentative[task.id] = (pool, k)

    def move(self, key, held: int = 0, quota: int = 0) -> None:
        """Change a (pool, kind)'s held count or quota, and the pool's share-left work with it."""
        pool, k = key
        before = max(0, self.left(pool, k))
        if held:
            self.held[key] = self.held.get(key, 0) + held
        if quota:
            self.quota[pool][k] += quota
        after = max(0, self.left(pool, k))
        if self.work is not None and after != before and pool in self.work:
            w = self.work[pool]
            w[0] += (after - before) * self.price(pool, k)
            w[1] += after - before

    def price_share(self, pool) -> list:
        """[predicted seconds, tasks] of what `pool` has left of its share."""
        w = [0.0, 0]
        for k in self.quota.get(pool, {}):
            if (n := self.left(pool, k)) > 0:
                w[0] += n * self.price(pool, k)
                w[1] += n
        return w

    def cut(self, pool, k) -> float:
        """How much `pool`'s projected end shrinks when a task of its kind-k share goes elsewhere."""
        return (self.price(pool, k) + self.sample[pool].overhead) / self.members[pool]

    def projected(self, first: dict, now: float) -> dict:
        """pool -> predicted end of its first-free device's queue plus an even part of its unplaced share."""
        if self.work is None:
            self.work = {pool: self.price_share(pool) for pool in self.quota}
        out = {}
        for pool, d in first.items():
            w = self.work.get(pool)
            out[pool] = max(d.queue_end, now) + (
                (w[0] + w[1] * self.sample[pool].overhead) / self.members[pool] if w else 0.0
            )
        return out

    def span(self, ends: dict, now: float) -> float:
        """The projected makespan: the latest pool end, or later where pools time-slice shared cores (their
        work adds up: a task emulated on another device's core delays that device's queue by its length)."""
        span = max(ends.values())
        for pools in self.groups:
            span = max(span, now + sum(ends[p] - now for p in pools if p in ends))
        return span

    def quickest(self, pool) -> tuple[float, dict]:
        """(the least a task adds to `pool`'s end, {group of shared-core pools with it: the least it adds to
        their summed work, a group-mate's share shrinking by its own time for the kind}), at current
        predictions; the lower bounds dmda's wants() tests against the projected makespan."""
        if pool not in self.quick:
            add = self.cost(pool)
            shared = {}
            for group in self.groups:
                if pool in group:
                    mates = [(self.cost(q), self.members[q]) for q in group if q != pool and q in self.sample]
                    shared[group] = min(
                        (a - max(0.0, max(c.get(k, 0.0) / n for c, n in mates)) for k, a in add.items()),
                        default=math.inf,
                    )
            self.quick[pool] = (min(add.values(), default=math.inf), shared)
        return self.quick[pool]

    def cost(self, pool) -> dict:
        """kind -> what a task of it adds to one of `pool`'s devices (prediction plus call overhead), for the kinds
        the pool runs; kept until one of the pool's tasks ends."""
        if pool not in self.costs:
            d = self.sample[pool]
            self.costs[pool] = {k: self.price(pool, k) + d.overhead for k, t in self.kinds.items() if d.runs(t)}
        return self.costs[pool]
