"""The policy interface: plain objects with no Ray dependency, driven by the one driver loop
(hetero.scheduler.driver) on Ray actors or on the simulator's clock. StarPU's sched_policies hooks, in Python:

    plan(tasks, devices, model)                  once per run, before any task is ready (HEFT plans here)
    order(ready) -> ready                        which ready task to place first (dmda, heft: highest rank first)
    place(task, devices, model, now) -> device | None      None: wait for a device to free up
    assign(ready, devices, model, now) -> [(task, device)]  a pulling policy (pulls = True) instead: each device
                                                 with a free slot takes a ready task (StarPU's pop_task)
    begin(now), placed(task, device, predicted), ended(task, device, seconds), wants(device, devices, model, now)

`devices` are DeviceState objects whose queue_end (when each queue is predicted to drain, a task counted as its
predicted run plus the device's call overhead) and outstanding (tasks sent, not finished) the driver keeps;
`model` has predict(backend, device, case) -> seconds | None; a task has id, case, deps, nbytes and resident
(device name -> input bytes already there).
"""

from __future__ import annotations

from hetero.scheduler.costs import task_seconds
from hetero.scheduler.device import DeviceState


class Policy:
    name = "policy"
    # True when the driver releases tasks over time (a stream of requests, set before plan()): plan() still sees
    # every task, but a plan for the whole set at once (dmda's LP shares) does not fit requests yet to arrive
    streaming = False
    # when its placement rule last changed (UTC): a replay of a run made before then simulates a different
    # policy from the one that ran, and says so (bench.simulate --replay); None: unchanged since runs were kept
    revised: str | None = None
    pooled = False  # True: indifferent among identical devices, so the simulator may show one per pool
    # None: every placement is final and sent to the device at once. N: a device is sent at most N tasks at a time;
    # a task placed on a device that already holds N is held back and placed again after the next task ends,
    # when the queues are known from measurements, not predictions (late binding: prediction errors do not pile
    # up in a long queue). The runtime honours it; so does the simulator where durations differ from predictions.
    commit: int | None = None
    # False: the caller offers ready tasks one by one (order, then place). True: it asks assign() once a pass
    # for (task, device) pairs, each device with a free slot (fewer than `commit` tasks) taking the task it
    # should run next, as StarPU's pull-based schedulers do in pop_task.
    pulls = False
    # with `commit`: a pass stops after this many placements in a row were held back (None: it goes on through
    # every ready task). A held placement only informs the pass's later ones, and otherwise a pass ends early only
    # once every device holds `commit` tasks: a device the policy gives nothing would keep every pass going
    # through every ready task.
    lookahead: int | None = None
    # the most tasks the simulator gives it (bench.simulate skips it on larger sets, saying so): a pass that looks
    # at every ready task for every free slot is O(tasks) a task end, O(tasks^2) a run
    max_sim_tasks: int | None = None

    def plan(self, tasks, devices, model) -> None:
        pass

    def placing(self) -> str:
        """The policy whose rules placed the tasks: this one (auto: the one it chose when it planned)."""
        return self.name

    def sim_limit(self, tasks, streaming: bool = False) -> int | None:
        """max_sim_tasks for these tasks, known before plan() (auto's depends on what it will choose)."""
        return self.max_sim_tasks

    def assign(self, ready: list, devices: list, model, now: float) -> list:
        """Pulling policies: rounds in which each device with a free slot, the one whose queue drains first
        first, takes one ready task (take()), until none takes any. The caller sends the pairs in order."""
        left, out = list(ready), []
        slots = {d.name: self.commit - d.outstanding for d in devices if d.alive}
        ends = {d.name: d.queue_end for d in devices}  # place_task counts the pairs when the caller sends them
        while left:
            took = False
            for d in sorted((d for d in devices if slots.get(d.name, 0) > 0), key=lambda d: max(d.queue_end, now)):
                t = self.take(d, left, devices, model, now)
                if t is None:
                    continue
                left.remove(t)
                out.append((t, d))
                slots[d.name] -= 1
                # counted in its queue for the rest of this pass, as place_task will count it
                d.queue_end = max(d.queue_end, now) + task_seconds(model, t, d, devices)
                took = True
            if not took:
                break
        for d in devices:
            d.queue_end = ends[d.name]
        return out

    def take(self, device: DeviceState, ready: list, devices: list, model, now: float):
        raise NotImplementedError

    def order(self, ready: list) -> list:
        return ready

    def place(self, task, devices, model, now) -> DeviceState | None:
        raise NotImplementedError

    def begin(self, now: float) -> None:
        """A placement pass starts: the last pass's held-back placements are forgotten (the caller resets the
        queue ends to the tasks it sent), and predictions may have changed since."""

    def placed(self, task, device: DeviceState, predicted: float | None) -> None:
        """The caller sent `task` to `device`, where the model predicted `predicted` seconds for it (None: no
        prediction); place() may be asked again for a task it then held back."""

    def ended(self, task, device: DeviceState, seconds: float | None = None) -> None:
        """`task` ended on `device` after `seconds` and the model has learnt its time: predictions for that
        device may change."""

    def wants(self, device: DeviceState, devices: list, model, now: float) -> bool:
        """With `commit`, before each placement of a pass: False when `device`, which has a free slot, would take
        none of the ready tasks as things stand in this pass, so the pass may end without placing them all again
        (the caller ends it once no device with a free slot wants one). True unless the policy can tell."""
        return True
