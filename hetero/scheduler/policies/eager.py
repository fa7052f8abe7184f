"""eager: the first idle device that runs the task."""

from __future__ import annotations

from hetero.scheduler.costs import capable
from hetero.scheduler.policies.base import Policy


class Eager(Policy):
    """The first idle device that runs the task; none idle: wait."""

    name = "eager"
    pooled = True

    def place(self, task, devices, model, now):
        return next((d for d in capable(task, devices) if d.outstanding == 0), None)
