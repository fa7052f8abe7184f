"""single: everything on the one device predicted to finish the whole set soonest."""

from __future__ import annotations

import math

from hetero.scheduler.costs import capable, predict
from hetero.scheduler.device import DeviceState
from hetero.scheduler.policies.base import Policy


class Single(Policy):
    """Everything on the one device the model says finishes the whole set soonest (tasks it cannot run go to
    the fastest device that can)."""

    name = "single"

    def __init__(self):
        self.best: DeviceState | None = None

    def plan(self, tasks, devices, model):
        totals: dict = {}  # identical devices have identical totals: once per (backend, device, workloads)

        def total(d):  # running more of the set first, then the least predicted time
            key = (d.backend, d.device, d.supports)
            if key not in totals:
                ps = [predict(model, t, d) for t in tasks if d.runs(t)]
                totals[key] = (-len(ps), math.inf if None in ps else sum(ps))
            return totals[key]

        live = [d for d in devices if d.alive]
        self.best = min(live, key=total) if live else None

    def place(self, task, devices, model, now):
        if self.best is not None and self.best.runs(task):  # runs() is False once the device died
            return self.best
        c = capable(task, devices)
        return min(c, key=lambda d: predict(model, task, d) or math.inf, default=None)
