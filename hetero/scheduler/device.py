"""A device as the scheduler sees it (its fixed description, and its state during a run), and task kinds."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class DeviceSpec:
    """What a device is, for the scheduler: fixed for a run."""

    name: str  # unique label: 'numba', or 'numba@1' on the second node
    backend: str
    device: str  # the backend Device's name: the perf model's key
    latency: float = 0.0  # seconds per transfer, measured once
    bandwidth: float = math.inf  # bytes per second, measured once
    supports: frozenset | None = None  # workloads it runs (None: all)
    # a key shared by the devices pinned to the same cores (bench.schedule --share-cores): they time-slice them,
    # together running as one device would; None: cores of its own
    core_group: object = None


@dataclass
class DeviceState(DeviceSpec):
    """A device during a run: its description, and the queue the driver keeps for it (hetero.scheduler.driver)."""

    overhead: float = 0.0  # seconds each task holds it beyond its run (the perf model's call overhead)
    # how much longer than predicted its tasks may run, as a fraction (hetero.scheduler.slips): the runtime sets
    # the perf model's observed error, or an assumed large one; 0 in a simulation run on its own predictions
    error: float = 0.0
    queue_end: float = 0.0  # when its queue is predicted to drain (run clock)
    outstanding: int = 0  # tasks sent to it and not heard of as done
    alive: bool = True
    exploring: set = field(default_factory=set)  # task kinds in flight on it with no prediction yet

    def runs(self, task) -> bool:
        return self.alive and (self.supports is None or task.case.workload in self.supports)

    def reset(self) -> None:
        """A run starts: an empty queue."""
        self.queue_end, self.outstanding, self.exploring = 0.0, 0, set()


_KIND_IDS: dict = {}  # (workload, params, dtype) -> a small int, the same for every task object of that kind


def kind(task) -> int:
    """The task's kind (workload, parameters, dtype) as a small int, cached on the task for its case. Policies
    key every table by it, many lookups a placement: hashing the parameter tuple on each is a large part of a
    placement's cost."""
    got = task.__dict__.get("_kind")
    if got is not None and got[0] is task.case:
        return got[1]
    c = task.case
    k = _KIND_IDS.setdefault((c.workload, c.params, c.dtype), len(_KIND_IDS))
    task.__dict__["_kind"] = (c, k)
    return k
