"""The placement step the driver takes for every task (hetero.scheduler.driver)."""

from __future__ import annotations

from hetero.scheduler.costs import task_seconds, transfer
from hetero.scheduler.device import DeviceState, kind


def place_task(
    policy,
    task,
    shown: list,
    every: list,
    model,
    now: float,
    where: dict,
    commit: int | None,
    device: DeviceState | None = None,
):
    """One placement step, as the runtime (hetero.scheduler.runtime.execute) and the simulator
    (hetero.scheduler.simulate.simulate) both take it: note where the task's inputs already are (where: task id ->
    device name), ask the policy for one of the `shown` devices, add the task's predicted seconds (the mean over
    `every` device when this one has none, plus its per-call overhead) to that device's queue end, and say whether
    the task is held back (late binding: the device already has `commit` tasks). A held task stays ready; a device
    it was being explored on stays marked. Returns None when the policy declines, else (device, predicted seconds,
    transfer seconds, held). `device`: the one a pulling policy's assign() chose (never held)."""
    if task.deps:
        task.resident = {}
        for p in task.deps:
            task.resident[where[p]] = task.resident.get(where[p], 0.0) + task.nbytes / len(task.deps)
    exploring = {d.name for d in shown if kind(task) in d.exploring} if commit else ()
    d = device or policy.place(task, shown, model, now)
    if d is None:
        return None
    p = task_seconds(model, task, d, every)
    tr = transfer(task, d)
    d.queue_end = max(d.queue_end, now + tr) + p
    held = device is None and bool(commit) and d.outstanding >= commit
    if held and d.name not in exploring:
        d.exploring.discard(kind(task))  # place() marked it explored; held, it was not: explore it next pass
    return d, p, tr, held
