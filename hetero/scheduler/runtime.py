"""A run on Ray: the driver loop (hetero.scheduler.driver) with an executor that sends each task to its device's
actor (hetero.scheduler.workers), and the perf model's calibration.

Only ready tasks are submitted (an actor runs its calls in order, so a task waiting on inputs would block the
queue). Outputs stay in Ray's object store: a dependent task gets the ObjectRef, the driver pulls an output only
to check it. When an actor dies, every task it had not finished goes back to the ready list and runs elsewhere;
the run counts those retries, and a task's result is recorded exactly once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from hetero.errors import HeteroError
from hetero.scheduler.costs import predict
from hetero.scheduler.device import DeviceState
from hetero.scheduler.driver import Died, Done, Driver
from hetero.scheduler.policies.base import Policy
from hetero.scheduler.slips import starting_error
from hetero.scheduler.tasks import TaskSet, build_inputs, reference_check
from hetero.scheduler.workers import Worker, _cause
from hetero.threads import one_blas_thread


@dataclass
class RunResult:
    policy: str
    taskset: TaskSet
    mix: str = ""  # the device mix's label, e.g. 'numba+opencl'
    events: list = field(default_factory=list)  # dicts: task, label, device, sent, start, end, kernel_s, flops
    t0: float = 0.0
    t1: float = 0.0
    retries: int = 0
    overhead_s: float = 0.0  # in the policy and bookkeeping, not waiting (wall clock)
    submit_s: float = 0.0  # in Ray's .remote() calls that submit tasks
    # the driver thread's CPU time over the same spans as overhead_s: with every core busy computing (devices
    # sharing cores), the wall time also holds the time the OS gave to the devices instead
    overhead_cpu_s: float = 0.0
    checked: int = 0
    wrong: list = field(default_factory=list)
    dead: list = field(default_factory=list)  # devices that died during the run
    alive_start: list = field(default_factory=list)  # names of the devices alive when it started
    alive_end: list = field(default_factory=list)  # and when it ended
    basis: dict = field(default_factory=dict)  # what the plan's predictions rested on: PerfModel.basis -> count
    error_basis: dict = field(default_factory=dict)  # devices whose prediction error was observed / assumed
    planned_overhead: dict = field(default_factory=dict)  # device name -> call overhead (s) the policy priced
    planned_error: dict = field(default_factory=dict)  # device name -> prediction error its slip started from
    placed_by: str = ""  # the policy whose rules placed the tasks (Policy.placing(): auto's choice)
    simulated: dict = field(default_factory=dict)  # auto on a graph: its candidates' simulated makespans (s)

    @property
    def makespan(self) -> float:
        return self.t1 - self.t0

    def spent(self, since: tuple, inner: tuple = (0.0, 0.0)) -> None:
        """Count the driver's time from `since` (_clocks()) to now as overhead, less `inner` (wall, CPU) spent in
        calls counted elsewhere (Ray's submits)."""
        wall, cpu = _clocks()
        self.overhead_s += wall - since[0] - inner[0]
        self.overhead_cpu_s += cpu - since[1] - inner[1]


def _clocks() -> tuple[float, float]:
    """(wall, this thread's CPU) seconds."""
    return time.perf_counter(), time.thread_time()


def execute(
    taskset: TaskSet,
    devices: list[Worker],
    policy: Policy,
    model,
    check: str = "sample",
    sample: int = 8,
    seed: int = 0,
    on_done=None,
    arrivals: list | None = None,
) -> RunResult:
    """Run every task of the set once, placed by `policy` (the driver loop, hetero.scheduler.driver); learn each
    duration into `model`; check outputs. on_done(result, task, device name) is called as each task's end arrives.
    arrivals: a stream's [(seconds from the start, tasks)] (hetero.scheduler.streams), released open loop."""
    live = [d for d in devices if d.state.alive]
    states = [d.state for d in live]
    res = RunResult(policy.name, taskset, alive_start=[s.name for s in states])
    for s in states:
        s.overhead = model.call_overhead(s.backend, s.device)
        s.error, how = starting_error(model, s.backend, s.device)
        res.error_basis[how] = res.error_basis.get(how, 0) + 1
    # what the model predicted for each task kind on each device when the policy planned (kept in the trace, so
    # that a replay plans from the same beliefs: HEFT's static plan hangs on them)
    believed: dict = {}
    for t in taskset.tasks:
        if t.case not in believed:
            believed[t.case] = {s.name: p for s in states if s.runs(t) and (p := predict(model, t, s)) is not None}
    for case in believed:  # per (device, task kind) of the set: measured, or assumed (a fit) or unknown
        for st in states:
            b = model.basis(st.backend, st.device, case)
            res.basis[b] = res.basis.get(b, 0) + 1
    # and the call overhead each device's queue was priced with (a static plan such as HEFT's hangs on it too),
    # and the prediction error its guard started from
    res.planned_overhead = {s.name: s.overhead for s in states}
    res.planned_error = {s.name: s.error for s in states}
    checked = _to_check(taskset, check, sample, seed)
    executor = RayExecutor(taskset, live, model, res, believed, on_done, checked)
    rec = Driver(taskset.tasks, states, policy, model, arrivals=arrivals).run(executor)
    res.retries, res.dead = rec.retries, rec.dead
    res.placed_by, res.simulated = policy.placing(), dict(getattr(policy, "simulated", None) or {})
    res.alive_end = [s.name for s in states if s.alive]
    res.t1 = max(e["end"] for e in res.events)
    _check(res, taskset, executor.out_ref, executor.args, checked)
    return res


def _to_check(taskset: TaskSet, mode: str, sample: int, seed: int) -> list[int]:
    """Ids of the tasks whose outputs are checked against the reference after the run: every one (`all`), a
    seeded sample of `sample` (`sample`) or none."""
    ids = [t.id for t in taskset.tasks]
    if mode == "none":
        return []
    if mode == "sample" and len(ids) > sample:
        return sorted(np.random.default_rng(seed).choice(ids, sample, replace=False).tolist())
    return ids


class RayExecutor:
    """The driver's executor on Ray: a task is an actor call whose output stays in the object store (a dependent
    task gets its ObjectRef); the driver's own time between waits is the run's overhead (RunResult.spent)."""

    def __init__(
        self, taskset: TaskSet, devices: list[Worker], model, res: RunResult, believed: dict, on_done=None, checked=()
    ):
        self.model = model
        self.by_name = {d.state.name: d for d in devices}
        states = [d.state for d in devices]
        self.mates = {
            s.name: [m.name for m in states if m is not s and s.core_group is not None and m.core_group == s.core_group]
            for s in states
        }
        self.const_refs = _const_refs(taskset)
        self.res, self.believed, self.on_done = res, believed, on_done
        self.checked = set(checked)
        self.out_ref, self.args = Outputs(taskset.tasks, self.checked), {}  # task id -> output ref, argument refs
        self.inflight: dict = {}  # stats ref -> (task, device name, out ref, sent)
        self.last_end: dict = {}  # device name -> end (actor clock) of its last finished task
        self.in_submit = [0.0, 0.0]  # (wall, CPU) seconds in Ray's .remote() calls since the last wait
        self.tick = _clocks()
        res.t0 = time.time()

    def now(self) -> float:
        return time.time() - self.res.t0

    def send(self, t, st: DeviceState, p: float, tr: float) -> None:
        a = [self.const_refs.get(t.const)] + [self.out_ref[d] for d in t.deps]
        sub = _clocks()
        o, s = self.by_name[st.name].actor.run.options(num_returns=2).remote(t, *a)
        wall, cpu = _clocks()
        self.res.submit_s += wall - sub[0]
        self.in_submit[0] += wall - sub[0]
        self.in_submit[1] += cpu - sub[1]
        if t.id in self.checked:
            self.args[t.id] = a
        self.inflight[s] = (t, st.name, o, time.time())

    def wait(self, until: float | None = None) -> list:
        """The ends that have arrived (at least one), and the devices found dead; [] if `until` (run clock) comes
        first."""
        import ray

        self.res.spent(self.tick, tuple(self.in_submit))
        timeout = None if until is None else max(0.0, until - self.now())
        if not self.inflight:
            time.sleep(timeout or 0.0)
            done = []
        else:
            done, _ = ray.wait(list(self.inflight), num_returns=1, timeout=timeout)
        if done and len(self.inflight) > 1:
            done, _ = ray.wait(list(self.inflight), num_returns=len(self.inflight), timeout=0)
        self.tick, self.in_submit = _clocks(), [0.0, 0.0]
        out = []
        for ref in done:
            if ref in self.inflight:
                out.append(self._heard(ref))
        return out

    def _heard(self, ref):
        import ray
        from ray.exceptions import RayActorError

        t, name, o, sent = self.inflight.pop(ref)
        st = self.by_name[name].state
        try:
            stats = ray.get(ref)
        except RayActorError:
            for k in [k for k, v in self.inflight.items() if v[1] == name]:
                del self.inflight[k]
            return Died(st)
        except Exception as exc:
            raise HeteroError(f"task {t.id} ({t.label}) failed on device {name}: {_cause(exc)}") from None
        alone = not _overlapped(name, stats, self.mates, self.last_end, self.inflight)
        self._learn_overhead(st, sent, stats)
        self.out_ref.finished(t.id, o)
        self.res.events.append(
            {
                "task": t.id,
                "label": t.label,
                "workload": t.case.workload,
                "shape": t.case.shape,
                "device": name,
                "sent": sent,
                "start": stats["start"],
                "end": stats["end"],
                "kernel_s": stats["kernel_s"],
                "flops": t.flops,
                "predicted": self.believed[t.case],
                "planned_overhead": self.res.planned_overhead.get(name, 0.0),
                "planned_error": self.res.planned_error,
            }
        )
        if self.on_done:
            self.on_done(self.res, t, name)
        t0 = self.res.t0
        return Done(t, st, stats["start"] - t0, stats["end"] - t0, alone)

    def _learn_overhead(self, st: DeviceState, sent: float, stats: dict) -> None:
        """A task sent before its device's previous task ended waited in the actor's queue: the gap from that end
        to its start is the per-call overhead (the actor storing the output and taking the next call)."""
        prev = self.last_end.get(st.name)
        if prev is not None and sent < prev <= stats["start"]:
            self.model.add_call(st.backend, st.device, stats["start"] - prev)
            st.overhead = self.model.call_overhead(st.backend, st.device)
        self.last_end[st.name] = max(prev or 0.0, stats["end"])


class Outputs(dict):
    """task id -> the ref of its output in Ray's object store, kept while needed. The store holds
    OBJECT_STORE_BYTES, less than a long stream's outputs, and an overfull store spills to disk, stalling every
    device for seconds. An output is kept while a child has not finished with it (a child
    sent to a device that dies is sent again) and for the check after the run (`checked` tasks and their
    parents, whose outputs the check rebuilds inputs from); Ray frees an object once no ref to it is left."""

    def __init__(self, tasks, checked: set):
        super().__init__()
        self.deps = {t.id: t.deps for t in tasks}
        self.keep = set(checked) | {d for t in tasks if t.id in checked for d in t.deps}
        self.children_left: dict = {}
        for t in tasks:
            for d in t.deps:
                self.children_left[d] = self.children_left.get(d, 0) + 1

    def finished(self, task_id: int, ref) -> None:
        """The task's output `ref` has arrived: keep it if needed, and drop its parents' no one needs now."""
        if self.children_left.get(task_id) or task_id in self.keep:
            self[task_id] = ref
        for d in self.deps[task_id]:
            self.children_left[d] -= 1
            if not self.children_left[d] and d not in self.keep:
                self.pop(d, None)


def _overlapped(name: str, stats: dict, mates: dict, last_end: dict, inflight: dict) -> bool:
    """Whether a device pinned to the same cores as `name` may have computed while its task ran (stats["start"]
    to stats["end"]): a mate's last task ended after it started, or a mate had a task sent before it ended
    (inflight: ref -> (task, device name, out ref, sent)). Its time then holds the mate's time slices too."""
    return any(
        last_end.get(m, 0.0) > stats["start"] or any(v[1] == m and v[3] < stats["end"] for v in inflight.values())
        for m in mates[name]
    )


def _const_refs(taskset: TaskSet) -> dict:
    """The set's constant inputs in the object store, put once per task set and Ray session, so that every run of
    it (each policy, each --repeat round) reads the same objects rather than copying them in again first
    (mixed:40 holds 381 MB of them, against an object store of OBJECT_STORE_BYTES)."""
    import ray

    job = ray.get_runtime_context().get_job_id()
    cached = getattr(taskset, "_const_refs", None)
    if cached is None or cached[0] != job:
        cached = (job, {k: ray.put(v) for k, v in taskset.consts.items()})
        taskset._const_refs = cached
    return cached[1]


def _check(res: RunResult, taskset: TaskSet, out_ref, args, ids: list[int]) -> None:
    import ray

    by_id = {t.id: t for t in taskset.tasks}
    with one_blas_thread():  # else OpenBLAS's idle threads spin into the next run, on the devices' cores
        for i in ids:
            t = by_id[i]
            vals = ray.get(args[i][1:])
            inputs = build_inputs(t, taskset.consts.get(t.const, {}), vals)
            ok, rel = reference_check(t, inputs, ray.get(out_ref[i]))
            res.checked += 1
            if not ok:
                res.wrong.append(f"task {i} ({t.label}) rel err {rel:.3g}")


def calibrate(
    taskset: TaskSet, devices: list[Worker], model, reps: int = 3, missing_only: bool = False, warn=print
) -> int:
    """Run each distinct task kind on each device `reps` times (+1 dropped) to fill the model; returns runs. A
    device that dies meanwhile is marked dead and left out (what it measured before stays learnt).
    missing_only: only the kinds a device holds no task samples for. A bench.run kernel median is not one: it was
    timed with the device holding every core (and, for OpenCL, on the device's clock, without the per-task host
    work), so next to calibrated devices it favours the one predicted from it."""
    import ray
    from ray.exceptions import RayActorError

    from hetero.scheduler.tasks import Task
    from hetero.workloads import get

    kinds = {t.case: Task(-1, t.case, t.label) for t in taskset.tasks}  # own seeded inputs, any task kind
    runs = 0
    for d in devices:
        todo = [
            t
            for t in kinds.values()
            if d.state.runs(t) and not (missing_only and model.basis(d.state.backend, d.state.device, t.case) == "task")
        ]
        try:
            for t in todo:
                const = ray.put(get(t.case.workload).make_inputs(t.case, 0))
                for _ in range(reps + 1):
                    _, stats = ray.get(d.actor.run.options(num_returns=2).remote(t, const))
                    model.add(d.state.backend, d.state.device, t.case, stats["end"] - stats["start"])
                    runs += 1
        except RayActorError:
            d.state.alive = False
            warn(f"note: device {d.state.name} died during calibration; continuing without it")
    return runs
