"""HeteroPrio, a pulling policy: each device with a free slot takes the ready task it is comparatively best at.

After Beaumont, Eyraud-Dubois et al. (HeteroPrio, for CPU+GPU nodes; StarPU's `heteroprio` scheduler). The caller
(hetero.scheduler.runtime.execute, hetero.scheduler.simulate.simulate) asks assign() once a pass, as StarPU asks
a pull-based scheduler's pop_task for each idle worker.
"""

from __future__ import annotations

import bisect

from hetero.scheduler.costs import capable, finish_time, predict
from hetero.scheduler.device import kind
from hetero.scheduler.graph import upward_ranks
from hetero.scheduler.policies.base import Policy
from hetero.scheduler.slips import Slips


class HeteroPrio(Policy):
    """HeteroPrio (Beaumont, Eyraud-Dubois et al.; StarPU's heteroprio scheduler), for unrelated devices: a device
    with a free slot takes the ready task it is comparatively best at, its predicted time there over the best
    other device's (lowest first; the highest upward rank among equals), so a slow device runs the kinds it is
    least slow at and leaves the rest to the device that is much faster at them. In place of HeteroPrio's
    spoliation (restarting a slow device's task on a fast one that freed up), a device takes a task it is slower
    at only when it would still finish it first, counting the other devices' queues and the ready tasks they
    would take before it, and its own predictions' error: its prediction there is stretched by how much longer
    than predicted its tasks run (hetero.scheduler.slips: observed in earlier runs and this one, assumed large
    where none is observed yet), so a device whose predictions run short, or may, does not take the critical
    path's tasks from a faster one on their strength. Each device is sent one task running and
    one waiting, so it is never idle between calls and every later choice is made on measured queues. Ratios
    depend only on a task's kind, so a choice costs O(kinds^2) once the ready tasks are grouped by kind, not
    O(ready^2)."""

    name = "heteroprio"
    pulls = True
    commit = 2
    max_sim_tasks = 5000
    revised = "2026-12-07T15:30+00:00"  # a slower device's slip starts at the model's error, or an assumed one

    def __init__(self):
        self.rank, self.seconds, self.ratios, self.slips = {}, {}, {}, Slips()

    def plan(self, tasks, devices, model):
        self.rank, self.seconds, self.ratios = upward_ranks(tasks, devices, model), {}, {}
        self.slips = Slips(devices)

    def placed(self, task, device, predicted):
        self.slips.placed(task, predicted)

    def ended(self, task, device, seconds=None):
        self.slips.ended(task, device, seconds)

    def order(self, ready):
        return sorted(ready, key=lambda t: -self.rank.get(t.id, 0.0))

    def place(self, task, devices, model, now):  # the callers ask assign(); one offering tasks one by one gets EFT
        c = capable(task, devices)
        return min(c, key=lambda d: finish_time(model, task, d, devices, now), default=None)

    def assign(self, ready, devices, model, now):
        self.seconds, self.ratios = {}, {}  # per (device name, kind), for this pass: predictions do not change
        return super().assign(ready, devices, model, now)

    def _predict(self, model, t, d, k):
        key = (d.name, k)
        if key not in self.seconds:
            self.seconds[key] = predict(model, t, d)
        return self.seconds[key]

    def _ratio(self, model, t, d, k, devices):
        """d's predicted time for t (of kind k) over the best other device's (0: no other runs it; None:
        unmeasured on d)."""
        key = (d.name, k)
        if key not in self.ratios:
            mine = self._predict(model, t, d, k)
            alt = [p for e in devices if e is not d and e.runs(t) and (p := self._predict(model, t, e, k)) is not None]
            self.ratios[key] = None if mine is None else (mine / min(alt) if alt else 0.0)
        return self.ratios[key]

    def _finish(self, model, t, d, k, devices, now):
        return finish_time(model, t, d, devices, now, self._predict(model, t, d, k))

    def take(self, device, ready, devices, model, now):
        first: dict = {}  # kind -> its ready task of highest rank
        count: dict = {}  # kind -> ready tasks of it
        for t in ready:
            k = kind(t)
            count[k] = count.get(k, 0) + 1
            if k not in first or self.rank.get(t.id, 0.0) > self.rank.get(first[k].id, 0.0):
                first[k] = t
        ahead = self._ahead(first, count, devices, model)
        best, unseen = None, None
        for k, t in first.items():
            if not device.runs(t):
                continue
            r = self._ratio(model, t, device, k, devices)
            if r is None:  # never measured here: run it once (one kind at a time), so it is measured
                if unseen is None and k not in device.exploring:
                    unseen = t
                continue
            if r > 1.0:  # slower here: only if no other device would still finish it first, after its queue
                # and what it would take first, even with this device's observed slip
                fin = self._finish(model, t, device, k, devices, now) + self.slips.stretch(
                    device, self._predict(model, t, device, k)
                )
                if any(
                    self._finish(model, t, d, k, devices, now) + ahead[d.name](q) < fin
                    for d in devices
                    if d is not device and d.runs(t) and (q := self._ratio(model, t, d, k, devices)) is not None
                ):
                    continue
            key = (r, -self.rank.get(t.id, 0.0))
            if best is None or key < best[0]:
                best = (key, t)
        if unseen is not None:
            device.exploring.add(kind(unseen))
            return unseen
        return best[1] if best else None

    def _ahead(self, first, count, devices, model) -> dict:
        """device name -> f(ratio): predicted seconds of the ready tasks the device would take before a task of
        that ratio (the kinds it is comparatively better at), from prefix sums over its kinds by ratio."""
        out = {}
        for d in devices:
            rows = sorted(
                (r, count[k] * (self._predict(model, u, d, k) + d.overhead))
                for k, u in first.items()
                if d.runs(u) and (r := self._ratio(model, u, d, k, devices)) is not None
            )
            keys, sums, total = [r for r, _ in rows], [0.0], 0.0
            for _, w in rows:
                total += w
                sums.append(total)
            out[d.name] = lambda q, keys=keys, sums=sums: sums[bisect.bisect_left(keys, q)]
        return out
