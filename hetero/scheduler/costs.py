"""What a task costs a device, from the perf model's predictions: the rules every policy prices placements by.

`model` is anything with predict(backend, device, case) -> seconds | None (hetero.scheduler.perfmodel.PerfModel,
a simulator's profiles, or a test's table).
"""

from __future__ import annotations

from hetero.scheduler.device import DeviceState


def transfer(task, dev: DeviceState) -> float:
    missing = max(0.0, task.nbytes - getattr(task, "resident", {}).get(dev.name, 0.0))
    return (dev.latency + missing / dev.bandwidth) if missing else 0.0


def predict(model, task, dev: DeviceState) -> float | None:
    return model.predict(dev.backend, dev.device, task.case)


def estimate(model, task, devices) -> float:
    """A prediction for any device: the mean of the known ones (1 s when none is known; the first runs measure)."""
    known = [p for d in devices if d.runs(task) and (p := predict(model, task, d)) is not None]
    return sum(known) / len(known) if known else 1.0


def task_seconds(model, task, dev, devices, p: float | None = None) -> float:
    """What a task holds `dev` for: its prediction there (`p` if the caller has it; the mean of the known ones if
    none) plus the call overhead."""
    p = predict(model, task, dev) if p is None else p
    return (p if p is not None else estimate(model, task, devices)) + dev.overhead


def capable(task, devices) -> list[DeviceState]:
    return [d for d in devices if d.runs(task)]


def finish_time(model, task, dev, devices, now, p: float | None = None) -> float:
    return max(dev.queue_end, now + transfer(task, dev)) + task_seconds(model, task, dev, devices, p)
