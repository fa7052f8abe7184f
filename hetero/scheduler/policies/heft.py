"""heft: HEFT's static plan (Topcuoglu et al. 2002), earliest predicted finish where the plan has no answer."""

from __future__ import annotations

from hetero.scheduler.costs import capable, estimate, finish_time, predict, transfer
from hetero.scheduler.graph import upward_ranks
from hetero.scheduler.policies.base import Policy


class Heft(Policy):
    """HEFT (Topcuoglu et al. 2002): tasks by decreasing upward rank, each on the device with the earliest
    finish time, inserted into the first idle gap that fits. The plan is static; a device that dies, or a task
    the plan never saw, falls back to the earliest predicted finish now."""

    name = "heft"

    def __init__(self):
        self.rank, self.assign = {}, {}

    def plan(self, tasks, devices, model):
        self.rank = upward_ranks(tasks, devices, model)
        slots = {d.name: [] for d in devices}  # sorted (start, end) per device
        end, where = {}, {}
        by_id = {t.id: t for t in tasks}
        for t in sorted(tasks, key=lambda t: -self.rank[t.id]):  # rank order is a topological order
            best = None
            for d in capable(t, devices):
                ready = max(
                    (end[p] + (transfer(by_id[p], d) if where[p] != d.name else 0.0) for p in t.deps), default=0.0
                )
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


def _first_gap(slots, ready, dur):
    t = ready
    for s, e in slots:
        if t + dur <= s:
            return t
        t = max(t, e)
    return t
