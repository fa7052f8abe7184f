"""Identical devices as pools, so that a policy indifferent among them sees one device a pool (the simulator's
scale: a placement costs O(pools), not O(devices))."""

from __future__ import annotations

import heapq

from hetero.scheduler.device import DeviceState


def _key(d: DeviceState) -> tuple:
    """Which member of a pool a policy is shown: an idle one if any (its queue has drained, whatever its
    queue_end says when tasks ran longer than predicted elsewhere), else the one whose queue drains first. For
    dmda that member attains the pool's earliest finish; for eager it is idle whenever one is."""
    return d.outstanding > 0, d.queue_end


class Pools:
    """Per pool, a heap of (key, index, version) entries. A key that went down (a device went idle, or its
    queue_end went down) gets a fresh entry under a new version (lowered), which retires the device's older ones;
    a current entry whose key went up is re-keyed when it reaches the top. The top is then the member to show."""

    def __init__(self, devices: list[DeviceState]):
        groups: dict = {}
        for i, d in enumerate(devices):
            groups.setdefault((d.backend, d.device, d.latency, d.bandwidth, d.supports), []).append(i)
        self.devices = devices
        self.version = [0] * len(devices)
        self.heaps = [[(_key(devices[i]), i, 0) for i in members] for members in groups.values()]
        self.heap_of = {i: h for h in self.heaps for _, i, _ in h}
        for h in self.heaps:
            heapq.heapify(h)

    def lowered(self, i: int) -> None:
        """Device i's key went down: a fresh entry brings it up."""
        self.version[i] += 1
        heapq.heappush(self.heap_of[i], (_key(self.devices[i]), i, self.version[i]))

    def view(self) -> list[DeviceState]:
        out = []
        for h in self.heaps:
            while True:
                k, i, v = h[0]
                if v != self.version[i]:
                    heapq.heappop(h)  # retired by a fresher entry
                elif k != (cur := _key(self.devices[i])):
                    heapq.heapreplace(h, (cur, i, v))
                else:
                    break
            out.append(self.devices[i])
        return out
