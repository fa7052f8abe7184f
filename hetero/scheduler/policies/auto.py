"""auto: the policy right for the shape of the work, chosen by rule when the run plans.

- a batch of independent tasks: dmda, whose LP shares give each device the kinds it is comparatively best at and
  whose earliest-finish rule balances the end (on a stream of requests, earliest finish alone);
- a task graph: heteroprio, where each free device takes the ready task it is comparatively best at, highest
  upward rank first, so the critical path is not left waiting on a slow device (on graphs the LP ignores the
  dependencies that decide the order, and earliest finish alone sends a task to a slower device whose queue is
  empty while the fast one would finish it sooner);
- a stream of requests: heteroprio too. The LP shares need the whole set at once, and earliest finish alone
  spends a fast device's time on kinds it is only a little faster at, so a mix sustains less load before its
  queues grow; taking what each device is comparatively best at keeps the most throughput.
"""

from __future__ import annotations

from hetero.scheduler.policies.base import Policy

_HOOKS = ("commit", "pulls", "pooled", "lookahead", "max_sim_tasks", "revised")


def choose(tasks, streaming: bool = False) -> str:
    """The policy `auto` runs on these tasks (streaming: released over time, as requests arrive)."""
    return "heteroprio" if streaming or any(t.deps for t in tasks) else "dmda"


class Auto(Policy):
    name = "auto"

    def __init__(self):
        self.inner: Policy | None = None

    def plan(self, tasks, devices, model):
        from hetero.scheduler.policies import make

        self.inner = make(choose(tasks, self.streaming))
        self.inner.streaming = self.streaming
        self.inner.plan(tasks, devices, model)
        for attr in _HOOKS:  # the driver reads them after plan()
            setattr(self, attr, getattr(self.inner, attr))

    def sim_limit(self, tasks, streaming=False):
        from hetero.scheduler.policies import make

        return make(choose(tasks, streaming)).max_sim_tasks

    def order(self, ready):
        return self.inner.order(ready)

    def place(self, task, devices, model, now):
        return self.inner.place(task, devices, model, now)

    def assign(self, ready, devices, model, now):
        return self.inner.assign(ready, devices, model, now)

    def begin(self, now):
        self.inner.begin(now)

    def placed(self, task, device):
        self.inner.placed(task, device)

    def ended(self, task, device, seconds=None):
        self.inner.ended(task, device, seconds)

    def wants(self, device, devices, model, now):
        return self.inner.wants(device, devices, model, now)
