"""Identical devices as pools, so that a policy indifferent among them sees one device a pool (the simulator's
scale: a placement costs O(pools), not O(devices))."""
from __future__ import annotations

import heapq

from hetero.scheduler.device import DeviceState


class Pools:
    """Per pool, a heap of (queue_end, index) with an entry per member. A stale top is re-keyed until the top is
    current; a queue_end that went down gets a fresh entry (lowered); the top is then the member whose queue
    drains first."""

    def __init__(self, devices: list[DeviceState]):
        groups: dict = {}
        for i, d in enumerate(devices):
            groups.setdefault((d.backend, d.device, d.latency, d.bandwidth, d.supports), []).append(i)
        self.devices = devices
        self.heaps = [[(devices[i].queue_end, i) for i in members] for members in groups.values()]
        self.heap_of = {i: h for h in self.heaps for _, i in h}
        for h in self.heaps:
            heapq.heapify(h)

    def lowered(self, i: int) -> None:
        """Device i's queue_end went down (its tasks ran shorter than predicted): a fresh entry brings it up."""
        heapq.heappush(self.heap_of[i], (self.devices[i].queue_end, i))

    def view(self) -> list[DeviceState]:
        out = []
        for h in self.heaps:
            while h[0][0] != self.devices[h[0][1]].queue_end:
                heapq.heapreplace(h, (self.devices[h[0][1]].queue_end, h[0][1]))
            out.append(self.devices[h[0][1]])
        return out
