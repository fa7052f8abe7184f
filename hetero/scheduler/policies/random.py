"""random: a device drawn uniformly among those that run the task (seeded)."""

from __future__ import annotations

import random as _random

from hetero.scheduler.costs import capable
from hetero.scheduler.policies.base import Policy


class Random(Policy):
    name = "random"

    def __init__(self, seed: int = 0):
        self.rng = _random.Random(seed)

    def place(self, task, devices, model, now):
        for _ in range(8):  # rejection sampling is uniform over capable devices and O(1) when most are capable
            d = devices[self.rng.randrange(len(devices))] if devices else None
            if d is not None and d.runs(task):
                return d
        c = capable(task, devices)
        return self.rng.choice(c) if c else None
