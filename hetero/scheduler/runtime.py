"""The driver: start Ray (or join a cluster), one actor per device, then place ready tasks by a policy.

Only ready tasks are submitted (an actor runs its calls in order, so a task waiting on inputs would block the
queue). Outputs stay in Ray's object store: a dependent task gets the ObjectRef, the driver pulls an output only
to check it. When an actor dies, every task it had not finished goes back to the ready list and runs elsewhere;
the run counts those retries, and a task's result is recorded exactly once.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np

from hetero.errors import HeteroError
from hetero.scheduler import actors
from hetero.scheduler.policies import DeviceState, Policy, kind, place_task, predict
from hetero.scheduler.tasks import MIXED_WORKLOADS, TaskSet, build_inputs, reference_check
from hetero.threads import one_blas_thread


OBJECT_STORE_BYTES = 1024**3


def connect(address: str | None = None, num_cpus: int | None = None, resources: dict | None = None) -> None:
    """Join `address` (or RAY_ADDRESS); else start a local Ray with fixed CPUs, no dashboard, quiet workers, its
    servers listening on the loopback interface only."""
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        # `ray start --head` turns token authentication on where this user has a token (~/.ray/auth_token,
        # RAY_AUTH_TOKEN_PATH or RAY_AUTH_TOKEN), but ray.init(address=...) sends none unless RAY_AUTH_MODE=token:
        # with RAY_AUTH_MODE unset, do what Ray does for a cluster it finds by itself (address "auto").
        if "RAY_AUTH_MODE" not in os.environ:
            try:
                from ray._private.authentication.authentication_token_setup import \
                    maybe_enable_token_auth_if_token_available as use_token_if_any
                use_token_if_any(warn_if_disabled=False)
            except ImportError:      # a Ray without token authentication
                pass
        try:
            ray.init(address=address, log_to_driver=False)
        except (ConnectionError, RuntimeError) as exc:
            chain, e = [], exc
            while e is not None:
                chain, e = chain + [e], e.__cause__ or e.__context__
            if any(type(e).__name__ == "AuthenticationError" or "InvalidAuthToken" in str(e) for e in chain):
                raise HeteroError(f"cannot join the Ray cluster at {address}: it wants its authentication token; set "
                                  "RAY_AUTH_TOKEN to it (`ray get-auth-token` on the head) or RAY_AUTH_TOKEN_PATH to "
                                  "a file holding it, and RAY_AUTH_MODE=token") from None
            raise HeteroError(f"cannot join the Ray cluster at {address}: {str(exc).splitlines()[0]}") from None
    else:
        # Every task's output is copied into the object store. Without preallocation each copy also faults in
        # fresh shared-memory pages, which dominated a perf profile of ray.put on the 2-core VM. Preallocating
        # 1 GiB (mixed:40 holds 0.65 GiB of inputs and outputs) adds ~1 s to the start; a bigger set overflows to
        # Ray's fallback allocation on disk, slower but correct.
        # Ray's servers (GCS, raylet, workers) run what a connection sends them, and a local run serves this
        # machine only: they listen on the loopback interface. Ray makes the loopback its node address only where
        # it assumes no cluster (ray_constants.ENABLE_RAY_CLUSTER, off on Windows and macOS), so off for this start.
        from ray._private import ray_constants

        cluster = getattr(ray_constants, "ENABLE_RAY_CLUSTER", None)
        ray_constants.ENABLE_RAY_CLUSTER = False
        try:
            ray.init(num_cpus=num_cpus or os.cpu_count(), resources=resources or {}, include_dashboard=False,
                     log_to_driver=False, object_store_memory=OBJECT_STORE_BYTES, _node_ip_address="127.0.0.1",
                     _system_config={"preallocate_plasma_memory": True})
        finally:
            if cluster is not None:
                ray_constants.ENABLE_RAY_CLUSTER = cluster


@dataclass
class Device:
    state: DeviceState
    actor: object
    info: dict
    placement: actors.Placement


def start_devices(backends: list[str], share_cores: bool = False, strict: bool = False,
                  device_choice: dict | None = None, warn=print) -> tuple[list[Device], list[str]]:
    """Actors for every backend on every node; unavailable ones are noted (or raise with strict)."""
    import ray

    nodes = [n for n in ray.nodes() if n["Alive"]]
    declared = {r for n in nodes for r in n["Resources"]}
    placements, notes = actors.plan(backends, nodes, share_cores)
    remote = ray.remote(actors.DeviceActor)
    handles = [(p, remote.options(**actors.options(p, declared)).remote(p.backend, p.cores, p.threads,
                                                                       (device_choice or {}).get(p.backend)))
               for p in placements]
    infos = [(p, h, h.info.remote(list(MIXED_WORKLOADS))) for p, h in handles]
    devices = []
    for p, h, ref in infos:
        try:
            info = ray.get(ref, timeout=600)
        except Exception as exc:
            msg = f"device {p.label} unavailable: {_cause(exc)}"
            if strict:
                raise HeteroError(msg) from None
            warn(f"note: {msg}; continuing without it")
            ray.kill(h)
            continue
        if not info["supports"]:
            msg = f"device {p.label} runs none of the workloads ({'; '.join(f'{k}: {v}' for k, v in info['reasons'].items())})"
            if strict:
                raise HeteroError(msg)
            warn(f"note: {msg}; continuing without it")
            ray.kill(h)
            continue
        lat, bw = _measure_transfer(h)
        st = DeviceState(p.label, p.backend, info["device"], lat, bw, frozenset(info["supports"]))
        devices.append(Device(st, h, info, p))
    if not devices:
        raise HeteroError("no requested device is available; see python -m bench.run --list")
    keys = actors.share_keys([d.placement for d in devices])
    for d in devices:
        d.state.share = keys[d.state.name]
    return devices, notes


def _cause(exc: Exception) -> str:
    text = str(getattr(exc, "cause", None) or exc)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else type(exc).__name__


def _measure_transfer(actor, small: int = 1 << 10, big: int = 16 << 20) -> tuple[float, float]:
    """latency (s) and bandwidth (B/s) of handing an actor an object-store array: best of 3 round trips each."""
    import ray

    def best(n):
        ref = ray.put(np.zeros(n // 4, np.float32))
        ray.get(actor.touch.remote(ref))
        ts = []
        for _ in range(3):
            ref = ray.put(np.zeros(n // 4, np.float32))
            t0 = time.perf_counter()
            ray.get(actor.touch.remote(ref))
            ts.append(time.perf_counter() - t0)
        return min(ts)

    lat, tb = best(small), best(big)
    return lat, big / max(tb - lat, 1e-6)


def stop_devices(devices: list[Device]) -> None:
    import ray

    for d in devices:
        try:
            ray.kill(d.actor)
        except Exception:
            pass


@dataclass
class RunResult:
    policy: str
    taskset: TaskSet
    mix: str = ""                                 # the device mix's label, e.g. 'numba+opencl'
    events: list = field(default_factory=list)   # dicts: task, label, device, sent, start, end, kernel_s, flops
    t0: float = 0.0
    t1: float = 0.0
    retries: int = 0
    overhead_s: float = 0.0                       # in the policy and bookkeeping, not waiting (wall clock)
    submit_s: float = 0.0                         # in Ray's .remote() calls that submit tasks
    # the driver thread's CPU time over the same spans as overhead_s: with every core busy computing (devices
    # sharing cores), the wall time also holds the time the OS gave to the devices instead
    overhead_cpu_s: float = 0.0
    checked: int = 0
    wrong: list = field(default_factory=list)
    dead: list = field(default_factory=list)

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


def execute(taskset: TaskSet, devices: list[Device], policy: Policy, model, check: str = "sample",
            sample: int = 8, seed: int = 0, on_done=None) -> RunResult:
    """Run every task of the set once, placed by `policy`; learn each duration into `model`; check outputs."""
    import ray
    from ray.exceptions import RayActorError

    tasks = taskset.tasks
    live = [d for d in devices if d.state.alive]
    for d in live:
        d.state.queue_end, d.state.outstanding, d.state.exploring = 0.0, 0, set()
        d.state.overhead = model.call_overhead(d.state.backend, d.state.device)
    last_end: dict = {}          # device name -> end (actor clock) of its last finished task
    states = [d.state for d in live]
    mates = {s.name: [m.name for m in states if m is not s and s.share is not None and m.share == s.share]
             for s in states}
    by_name = {d.state.name: d for d in live}
    for t in tasks:
        if not any(s.runs(t) for s in states):
            raise HeteroError(f"no device here runs task {t.id} ({t.label}); devices: "
                              + ", ".join(f"{s.name} ({', '.join(sorted(s.supports or []))})" for s in states))
    const_refs = _const_refs(taskset)
    children: dict = {t.id: [] for t in tasks}
    for t in tasks:
        for p in t.deps:
            children[p].append(t)
    waiting = {t.id: len(t.deps) for t in tasks}
    ready = [t for t in tasks if not t.deps]
    out_ref, where, args = {}, {}, {}
    inflight: dict = {}          # stats ref -> (task, device name, predicted seconds incl. overhead, out ref, sent)
    res = RunResult(policy.name, taskset)
    tick = _clocks()
    policy.plan(tasks, states, model)
    res.spent(tick)
    # what the model predicted for each task kind on each device when the policy planned (kept in the trace, so
    # that a replay plans from the same beliefs: HEFT's static plan hangs on them)
    believed: dict = {}
    for t in tasks:
        if t.case not in believed:
            believed[t.case] = {s.name: p for s in states if s.runs(t) and (p := predict(model, t, s)) is not None}
    res.t0 = time.time()
    in_submit = [0.0, 0.0]      # this pass's (wall, CPU) seconds in Ray's .remote() calls
    commit = policy.commit
    committed = {s.name: 0.0 for s in states}    # queue ends counting only the tasks actually submitted

    def send(t, st, p):     # submit `t` to device state `st` (p: its predicted seconds there)
        committed[st.name] = st.queue_end
        st.outstanding += 1
        policy.placed(t, st)
        a = [const_refs.get(t.const)] + [out_ref[d] for d in t.deps]
        sub = _clocks()
        o, s = by_name[st.name].actor.run.options(num_returns=2).remote(t, *a)
        wall, cpu = _clocks()
        res.submit_s += wall - sub[0]
        in_submit[0] += wall - sub[0]
        in_submit[1] += cpu - sub[1]
        args[t.id] = a
        inflight[s] = (t, st.name, p, o, time.time())
        ready.remove(t)

    while len(out_ref) < len(tasks):
        tick = _clocks()
        in_submit[:] = [0.0, 0.0]
        now = time.time() - res.t0
        if commit:   # the last pass's held placements are forgotten: this pass plans them again, knowing more
            for s in states:
                s.queue_end = committed[s.name]
        policy.begin(now)
        alive = [s for s in states if s.alive]
        if policy.pulls:    # each device with a free slot takes a task
            for t, d in policy.assign(list(policy.order(ready)), alive, model, now):
                send(t, d, place_task(policy, t, alive, states, model, now, where, None, device=d)[1])
        else:               # ready tasks offered one by one (a copy: placed tasks leave `ready` as we go)
            held_in_row = 0
            for t in list(policy.order(ready)):
                if commit and (held_in_row == policy.lookahead or all(
                        s.outstanding >= commit or not policy.wants(s, alive, model, now)
                        for s in alive)):
                    break    # every device holds all it may or wants none, or the policy looks no further
                got = place_task(policy, t, alive, states, model, now, where, commit)
                if got is None:
                    continue
                st, p, _, held = got
                if held:
                    # it counts in st's queue for the rest of this pass, so the next tasks see the whole plan, but
                    # it stays ready and is placed again after the next task ends, by then with measured times
                    held_in_row += 1
                    continue
                held_in_row = 0
                send(t, st, p)
        res.spent(tick, tuple(in_submit))
        if not inflight:
            raise HeteroError(f"policy {policy.name} placed none of {len(ready)} ready tasks and none is running")
        done, _ = ray.wait(list(inflight), num_returns=1)
        done, _ = ray.wait(list(inflight), num_returns=len(inflight), timeout=0) if len(inflight) > 1 else (done, 0)
        tick = _clocks()
        for ref in done:
            if ref not in inflight:
                continue
            t, name, p, o, sent = inflight.pop(ref)
            st = by_name[name].state
            try:
                stats = ray.get(ref)
            except RayActorError:
                st.alive = False
                res.dead.append(name)
                lost = [k for k, v in inflight.items() if v[1] == name]
                for k in lost:
                    ready.append(inflight.pop(k)[0])
                ready.append(t)
                res.retries += len(lost) + 1
                if not any(s.alive for s in states):
                    raise HeteroError(f"every device died; last: {name} while running task {t.id} ({t.label})")
                continue
            except Exception as exc:
                raise HeteroError(f"task {t.id} ({t.label}) failed on device {name}: {_cause(exc)}") from None
            st.outstanding -= 1
            st.exploring.discard(kind(t))
            busy = stats["end"] - stats["start"]
            alone = not _overlapped(name, stats, mates, last_end, inflight)
            if alone or _unmeasured(model, st, t):
                model.add(st.backend, st.device, t.case, busy)
            policy.ended(t, st, busy if alone else None)
            prev = last_end.get(name)
            if prev is not None and sent < prev <= stats["start"]:   # it was queued: the gap is call overhead
                model.add_call(st.backend, st.device, stats["start"] - prev)
                st.overhead = model.call_overhead(st.backend, st.device)
            last_end[name] = max(prev or 0.0, stats["end"])
            rest = sum(v[2] for v in inflight.values() if v[1] == name)
            st.queue_end = committed[name] = time.time() - res.t0 + rest     # what is left of its queue, from now
            out_ref[t.id], where[t.id] = o, name
            res.events.append({"task": t.id, "label": t.label, "workload": t.case.workload, "shape": t.case.shape,
                               "device": name, "sent": sent, "start": stats["start"], "end": stats["end"],
                               "kernel_s": stats["kernel_s"], "flops": t.flops, "predicted": believed[t.case]})
            for c in children[t.id]:
                waiting[c.id] -= 1
                if waiting[c.id] == 0:
                    ready.append(c)
            if on_done:
                on_done(res, t, name)
        res.spent(tick)
    res.t1 = max(e["end"] for e in res.events)
    _check(res, taskset, out_ref, args, check, sample, seed)
    return res


def _overlapped(name: str, stats: dict, mates: dict, last_end: dict, inflight: dict) -> bool:
    """Whether a device pinned to the same cores as `name` may have computed while its task ran (from
    stats["start"] to stats["end"]): a mate's last task ended after it started, or a mate had a task sent before
    it ended. Its time then holds the mate's time slices too, which is not the device's own speed: in
    schedule-numba-opencl-fpga-zen5-final numba's predictions, learnt from the round-robin and random runs that
    gave fpga-emu a third of mixed:40 on numba's core, were 1.84x what its dmda run then measured."""
    return any(last_end.get(m, 0.0) > stats["start"]
               or any(v[1] == m and v[4] < stats["end"] for v in inflight.values()) for m in mates[name])


def _unmeasured(model, st: DeviceState, t) -> bool:
    """No sample of this task kind on the device yet: a time taken beside a mate beats none (else the device
    would be explored on every such task)."""
    return model.history(st.backend, st.device, t.case) is None


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


def _check(res: RunResult, taskset: TaskSet, out_ref, args, mode: str, sample: int, seed: int) -> None:
    import ray

    ids = [t.id for t in taskset.tasks]
    if mode == "none":
        return
    if mode == "sample" and len(ids) > sample:
        ids = sorted(np.random.default_rng(seed).choice(ids, sample, replace=False).tolist())
    by_id = {t.id: t for t in taskset.tasks}
    with one_blas_thread():     # else OpenBLAS's idle threads spin into the next run, on the devices' cores
        for i in ids:
            t = by_id[i]
            vals = ray.get(args[i][1:])
            inputs = build_inputs(t, taskset.consts.get(t.const, {}), vals)
            ok, rel = reference_check(t, inputs, ray.get(out_ref[i]))
            res.checked += 1
            if not ok:
                res.wrong.append(f"task {i} ({t.label}) rel err {rel:.3g}")


def calibrate(taskset: TaskSet, devices: list[Device], model, reps: int = 3, missing_only: bool = False,
              warn=print) -> int:
    """Run each distinct task kind on each device `reps` times (+1 dropped) to fill the model; returns runs."""
    import ray

    from hetero.scheduler.tasks import Task
    from hetero.workloads import get

    kinds = {t.case: Task(-1, t.case, t.label) for t in taskset.tasks}   # own seeded inputs, any task kind
    runs = 0
    for d in devices:
        todo = [t for t in kinds.values() if d.state.runs(t)
                and not (missing_only and model.history(d.state.backend, d.state.device, t.case))]
        for t in todo:
            const = ray.put(get(t.case.workload).make_inputs(t.case, 0))
            for _ in range(reps + 1):
                _, stats = ray.get(d.actor.run.options(num_returns=2).remote(t, const))
                model.add(d.state.backend, d.state.device, t.case, stats["end"] - stats["start"])
                runs += 1
    return runs
