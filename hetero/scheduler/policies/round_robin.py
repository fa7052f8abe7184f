"""round-robin: devices in turn, skipping those that cannot run the task."""

from __future__ import annotations

from hetero.scheduler.policies.base import Policy


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
