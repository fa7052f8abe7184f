"""The guard on graphs: a task leaves its fastest device only if the other device still finishes it first with
its prediction stretched by how far that device's predictions have been off.

A device's slip is how much longer than predicted its tasks run, as a fraction: max(0, took / predicted - 1). It
starts a run at DeviceState.error, which the runtime sets from the perf model (PerfModel.error: observed over
earlier runs) or, on a device whose error no run has shown yet (a new machine, a deleted model), ASSUMED_ERROR:
an unknown error is taken to be large, so that a first run keeps its tasks on the fastest device unless another
finishes them first even at half as long again as predicted. Not larger: a device's predictions after a short
calibration run long mostly where its work meets another device's on shared caches and memory, which is
also where spreading the work pays, so an error assumed far larger keeps every task of a graph on one device.
Within the run each task that ran alone on its cores moves the slip towards what it showed (the perf model's
RECENT weight), so a device that keeps its predictions earns its share as the run goes on. A simulation whose
durations are its predictions leaves error at 0.
"""

from __future__ import annotations

from hetero.scheduler.perfmodel import RECENT

ASSUMED_ERROR = 0.5  # slip of a device with no observed error: its tasks may take 1.5x their prediction


def starting_error(model, backend: str, device: str) -> tuple[float, str]:
    """(error, basis) a device starts a run with: the model's observed one ('observed'), or ASSUMED_ERROR
    ('assumed') where the model has none (or keeps none: a simulator's profiles, a test's table)."""
    got = model.error(backend, device) if hasattr(model, "error") else None
    return (got, "observed") if got is not None else (ASSUMED_ERROR, "assumed")


class Slips:
    """Per device, this run: how much longer than predicted its tasks run, starting at DeviceState.error."""

    def __init__(self, devices=()):
        self.value = {d.name: d.error for d in devices}
        self.sent: dict = {}  # task id -> its prediction on the device it was sent to

    def placed(self, task, predicted: float | None) -> None:
        """`task` was sent where the model predicted `predicted` seconds for it."""
        self.sent[task.id] = predicted

    def ended(self, task, device, seconds: float | None) -> None:
        """A task ended on `device`; `seconds`: what it took alone on its cores (None: it shared them, which
        says nothing of the prediction)."""
        p = self.sent.pop(task.id, None)
        if p and seconds is not None:
            over = max(0.0, seconds / p - 1.0)
            self.value[device.name] = (1 - RECENT) * self.value.get(device.name, over) + RECENT * over

    def stretch(self, device, seconds: float) -> float:
        """Extra seconds to count on `device` for a task predicted to take `seconds` there."""
        return self.value.get(device.name, 0.0) * seconds


def guarded(finish: dict, predicted: dict, slips: Slips, devices) -> dict:
    """finish (device name -> predicted finish) with every device but the fastest (lowest `predicted`, device
    name -> seconds) finishing later by its slip: the earliest of them is then the fastest device unless another
    beats its queue even if its prediction runs long."""
    if len(devices) < 2:
        return finish
    fastest = min(devices, key=lambda d: predicted[d.name]).name
    return {
        d.name: finish[d.name] + (0.0 if d.name == fastest else slips.stretch(d, predicted[d.name])) for d in devices
    }
