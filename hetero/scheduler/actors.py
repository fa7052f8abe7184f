"""One Ray actor per device. GPU devices ask Ray for a GPU; OpenCL and FPGA devices for a custom resource
('opencl', 'fpga') when the cluster declares one; CPU-backed devices are pinned to disjoint cores of their node
(os.sched_setaffinity on every thread of the actor) with their thread counts set, so two devices never share a
core unless the caller allows it (share_cores), and the plan says when they do.
"""

from __future__ import annotations

import contextlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from hetero.errors import HeteroError

GPU_BACKENDS = {"cupy", "torch-cuda"}
# Two calls in the actor at once, one computing: the other stores the previous output in the object store and
# takes in the next call's arguments meanwhile, so a queued task starts right after the one before it ends (with
# one call at a time, every task waits for the last one's output to be stored). The compute itself is one at a
# time (DeviceActor.compute).
CALLS_IN_FLIGHT = 2
# The compute runs on one thread of the actor's own at a lower priority (nice +COMPUTE_NICE, per thread on Linux):
# with every core computing, the threads that store outputs and pass completions on (Ray's in this actor, the
# driver, the raylet) otherwise wait for the compute's time slice to end before they run.
COMPUTE_NICE = 5
CORELESS = {"null"} | GPU_BACKENDS  # need no core of their own (a test double; a GPU's host thread)
RESOURCE = {"opencl": "opencl", "fpga-emu": "fpga"}


@dataclass
class Placement:
    backend: str
    label: str  # unique device label: 'numba', or 'numba@1' on the second node
    node_id: str
    cores: tuple[int, ...]  # indices into the node's allowed CPUs; () for coreless devices
    threads: int | None
    shared: bool = False


def plan(backends: list[str], nodes: list[dict], share_cores: bool = False) -> tuple[list[Placement], list[str]]:
    """Placements for every backend on every alive node, and notes (shared cores, devices a node lacks)."""
    declared = {r for n in nodes for r in n["Resources"]}
    out, notes = [], []
    for i, node in enumerate(nodes):
        res = node["Resources"]
        here = []
        for b in backends:
            if b in GPU_BACKENDS and res.get("GPU", 0) < 1:
                continue
            if b in RESOURCE and RESOURCE[b] in declared and res.get(RESOURCE[b], 0) < 1:
                continue
            here.append(b)
        bound = [b for b in here if b not in CORELESS]
        ncores = max(1, int(res.get("CPU", 1)))
        if len(bound) > ncores and not share_cores:
            raise HeteroError(
                f"{len(bound)} CPU-backed devices ({', '.join(bound)}) need {len(bound)} cores but "
                f"node {i} has {ncores}; drop one or pass --share-cores"
            )
        per, extra = divmod(ncores, len(bound)) if bound and len(bound) <= ncores else (1, 0)
        first = 0
        for b in here:
            label = b if len(nodes) == 1 else f"{b}@{i}"
            if b in CORELESS:
                out.append(Placement(b, label, node["NodeID"], (), None))
                continue
            k = bound.index(b)
            n = per + (1 if k < extra else 0)
            cores = tuple((first + j) % ncores for j in range(n))
            first += n
            out.append(Placement(b, label, node["NodeID"], cores, n, shared=len(bound) > ncores))
        if len(bound) > ncores:
            notes.append(f"note: node {i}: {len(bound)} CPU-backed devices share {ncores} cores (--share-cores)")
    return out, notes


def sharing(placements: list[Placement]) -> str:
    """'' when no two of these placements share a core, else a note naming the devices that do."""
    owners: dict = {}
    for p in placements:
        for c in p.cores:
            owners.setdefault((p.node_id, c), []).append(p.label)
    shared = sorted({label for labels in owners.values() if len(labels) > 1 for label in labels})
    return f"note: {', '.join(shared)} share cores (--share-cores)" if shared else ""


def share_keys(placements: list[Placement]) -> dict:
    """label -> (node, cores) for the placements pinned to the very cores of another (DeviceState.core_group: they
    time-slice them), None for the rest."""
    on: dict = {}
    for p in placements:
        if p.cores:
            on.setdefault((p.node_id, p.cores), []).append(p.label)
    keys = {p.label: None for p in placements}
    keys.update({label: key for key, labels in on.items() if len(labels) > 1 for label in labels})
    return keys


def options(p: Placement, declared: set) -> dict:
    """ray.remote options for the actor of placement p: resources, node, and the thread env set before import."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    opts: dict = {
        "num_cpus": 0,
        "max_restarts": 0,
        "max_task_retries": 0,
        "max_concurrency": CALLS_IN_FLIGHT,
        "scheduling_strategy": NodeAffinitySchedulingStrategy(p.node_id, soft=False),
    }
    if p.backend in GPU_BACKENDS:
        opts["num_gpus"] = 1
    if p.backend in RESOURCE and RESOURCE[p.backend] in declared:
        opts["resources"] = {RESOURCE[p.backend]: 1}
    if p.threads:
        n = str(p.threads)
        # the last two: PoCL's and Intel's CPU OpenCL drivers
        env = {
            k: n
            for k in (
                "NUMBA_NUM_THREADS",
                "OMP_NUM_THREADS",
                "OPENBLAS_NUM_THREADS",
                "MKL_NUM_THREADS",
                "POCL_MAX_PTHREAD_COUNT",
                "CL_CONFIG_CPU_TBB_NUM_WORKERS",
            )
        }
        env["POCL_AFFINITY"] = "0"  # PoCL's own pinning ignores our mask; its threads inherit the actor's
        opts["runtime_env"] = {"env_vars": env}
    return opts


def pin(cores: tuple[int, ...]) -> list[int]:
    """Pin every thread of this process (BLAS pools already exist) to the given indices of its allowed CPUs."""
    allowed = sorted(os.sched_getaffinity(0))
    cpus = sorted({allowed[c % len(allowed)] for c in cores})
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(tid), cpus)
    return cpus


class DeviceActor:
    """Runs tasks on one backend, one at a time on its compute thread, in about submission order: Ray hands it up
    to CALLS_IN_FLIGHT calls at once so that moving outputs and arguments overlaps the compute. Its queue is Ray's."""

    def __init__(self, backend: str, cores: tuple[int, ...], threads: int | None, device_choice: str | None):
        self.cpus = pin(cores) if cores else None
        # one worker: the compute is one task at a time; threads the kernels start (numba's, torch's) inherit its
        # priority and cores
        self.compute = ThreadPoolExecutor(
            1, thread_name_prefix="compute", initializer=_compute_thread, initargs=(self.cpus,)
        )
        from hetero.backends import registry

        self.backend = registry.get(backend, threads=threads, device=device_choice)
        reason = self.backend.unavailable()
        if reason:
            raise HeteroError(f"backend {backend!r} unavailable: {reason}")

    def info(self, workloads: list[str]) -> dict:
        """Device description and which workloads it runs: each probed on a tiny case, checked (warms JITs)."""
        return self.compute.submit(self._info, workloads).result()

    def _info(self, workloads: list[str]) -> dict:
        from hetero.workloads import check, get

        supports, reasons = [], {}
        try:
            self.backend.warmup()
        except Exception as exc:
            reasons["warmup"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
        for w in workloads:
            case = get(w).preset_cases("quick")[0]
            try:
                inputs = get(w).make_inputs(case, 0)
                k = self.backend.prepare(case, inputs)
                k()
                ok, _, _ = check(k.result(), get(w).reference(case, inputs), case.dtype)
                supports.append(w) if ok else reasons.setdefault(w, "wrong result on a quick case")
            except Exception as exc:
                reasons[w] = f"{type(exc).__name__}: {exc}".splitlines()[0]
        dev = self.backend.device()
        return {
            "device": dev.name,
            "kind": dev.kind,
            "pid": os.getpid(),
            "cpus": self.cpus,
            "supports": supports,
            "reasons": reasons,
        }

    def touch(self, arr) -> int:
        """For the transfer benchmark: receive an array, return its size."""
        return int(arr.nbytes)

    def run(self, task, const, *deps):
        """Build the inputs, prepare, run, return (output, stats). A modelled device (null, fpga-emu) is busy
        for its modelled seconds at least: the actor sleeps the rest, so schedules see the time it claims."""
        return self.compute.submit(self._run, task, const, deps).result()

    def _run(self, task, const, deps):
        from hetero.backends.base import MODELED
        from hetero.scheduler.tasks import build_inputs

        start = time.time()
        inputs = build_inputs(task, const or {}, list(deps))
        kernel = self.backend.prepare(task.case, inputs)
        seconds = kernel()
        out = np.asarray(kernel.result(), dtype=np.float32)
        if kernel.timing == MODELED:
            time.sleep(max(0.0, start + seconds - time.time()))
        end = time.time()
        return out, {"start": start, "end": end, "kernel_s": seconds, "pid": os.getpid()}


def _compute_thread(cpus: list[int] | None) -> None:
    """The compute thread's set-up: the device's cores, and a lower priority than the threads moving data."""
    if cpus:
        os.sched_setaffinity(0, cpus)  # 0: this thread
    with contextlib.suppress(OSError):  # not allowed here: the compute keeps the actor's priority
        os.nice(COMPUTE_NICE)
