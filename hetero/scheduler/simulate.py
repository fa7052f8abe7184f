"""A discrete-event simulation of a policy on a task set: every task takes exactly its predicted time (or the
time `actual` gives). No Ray: it tests policies and lets one study them on models of devices one lacks."""
from __future__ import annotations

import heapq

from hetero.scheduler.policies import DeviceState, Policy, estimate, predict, transfer


def simulate(tasks, devices: list[DeviceState], policy: Policy, model, actual=None) -> tuple[float, dict]:
    """(makespan, task id -> device name). `actual(task, device) -> seconds` defaults to the model's prediction."""
    actual = actual or (lambda t, d: predict(model, t, d))
    for d in devices:
        d.queue_end, d.outstanding = 0.0, 0
    free_at = {d.name: 0.0 for d in devices}
    children = {t.id: [c for c in tasks if t.id in c.deps] for t in tasks}
    waiting = {t.id: len(t.deps) for t in tasks}
    ready, where, events, now = [t for t in tasks if not t.deps], {}, [], 0.0
    policy.plan(tasks, devices, model)
    while len(where) < len(tasks):
        for t in policy.order(list(ready)):
            d = policy.place(t, devices, model, now)
            if d is None:
                continue
            p = predict(model, t, d)
            d.queue_end = max(d.queue_end, now + transfer(t, d)) + (p if p is not None else estimate(model, t, devices))
            d.outstanding += 1
            start = max(free_at[d.name], now + transfer(t, d))
            free_at[d.name] = start + actual(t, d)
            heapq.heappush(events, (free_at[d.name], t.id, t, d))
            ready.remove(t)
        now, _, t, d = heapq.heappop(events)
        d.outstanding -= 1
        d.exploring.clear()
        d.queue_end = max(now, d.queue_end)
        where[t.id] = d.name
        for c in children[t.id]:
            waiting[c.id] -= 1
            if waiting[c.id] == 0:
                ready.append(c)
    return now, where
