"""The backend contract: a few public methods that validate and wrap errors, over hooks each backend implements.

A backend is one file in hetero/backends/ (or a third-party module named in the `hetero.backends` entry-point
group) that defines a Backend subclass. Heavy imports (cupy, pyopencl, torch) happen inside the hooks, so
`import hetero` works anywhere, and `unavailable()` says *why* a backend cannot run here.

Life of one case, as bench.run drives it:
    kernel = backend.prepare(case, inputs)   # copy inputs to the device, compile, allocate the output
    seconds = kernel()                       # run once to completion; seconds on the backend's own clock
    out = kernel.result()                    # the output, copied back as a float32 NumPy array
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import ClassVar

import numpy as np

from hetero.devices import Device
from hetero.errors import BackendUnavailable, HeteroError
from hetero.workloads import Case, get

ALL = frozenset({"*"})  # Backend.features value: every feature of the workload (the reference, PyTorch)

# How a backend's seconds were obtained; every result row carries one of these.
MEASURED_DEVICE = "measured-device-clock"  # CUDA events, OpenCL profiling events
MEASURED_WALL = "measured-wall-clock"  # perf_counter around a synchronous call
MODELED = "modeled"  # an analytical model (the emulated FPGA)


class Kernel:
    """One prepared launch: inputs already on the device, output allocated. Subclasses override run/result."""

    timing: str = MEASURED_WALL
    transfer_s: float | None = None  # host->device copy of the inputs, seconds, when the backend measures it

    def __call__(self) -> float:
        """Run once to completion and return seconds by this kernel's clock (wall clock unless overridden)."""
        t0 = time.perf_counter()
        self.run()
        return time.perf_counter() - t0

    def run(self) -> None:
        raise NotImplementedError

    def result(self) -> np.ndarray:
        raise NotImplementedError


class HostKernel(Kernel):
    """A kernel that runs on the host: `fn(out)` fills the preallocated NumPy array `out`."""

    def __init__(self, fn: Callable[[np.ndarray], None], out: np.ndarray):
        self.fn, self.out = fn, out

    def run(self) -> None:
        self.fn(self.out)

    def result(self) -> np.ndarray:
        return self.out


class Backend:
    """Subclasses set `name` and `dtypes` and implement `_unavailable`, `device`, `_prepare`."""

    name: ClassVar[str]
    peer: ClassVar[bool] = False  # a peer library (PyTorch) shown for comparison, not hetero's own code
    dtypes: ClassVar[dict[str, tuple[str, ...]]] = {}  # workload -> dtypes this backend runs
    # workload -> the workload's FEATURES this backend runs (GQA, masks, groups, ...); ALL for every one
    features: ClassVar[dict[str, frozenset[str]]] = {}
    timing: ClassVar[str] = MEASURED_WALL

    def __init__(self, threads: int | None = None, device: str | None = None):
        self.threads = threads
        self.device_choice = device

    # -- public, validating --------------------------------------------------------------------------
    @classmethod
    def unavailable(cls) -> str | None:
        """None when this backend can run here, else the reason ('cupy not installed', 'no CUDA device')."""
        try:
            return cls._unavailable()
        except Exception as exc:  # a broken driver install must read as a reason, not a crash
            return f"{type(exc).__name__}: {exc}".splitlines()[0]

    def unsupported(self, case: Case) -> str | None:
        """None when this backend runs `case`, else why not (e.g. 'bfloat16 not supported by numba')."""
        if case.workload not in self.dtypes:
            return f"{case.workload} not implemented by {self.name}"
        if case.dtype not in self.dtypes[case.workload]:
            return (
                f"{case.dtype} {case.workload} not supported by {self.name} "
                f"(supports {', '.join(self.dtypes[case.workload])})"
            )
        workload = get(case.workload)
        missing = sorted(workload.features(case.p) - self.features.get(case.workload, frozenset()))
        if missing and self.features.get(case.workload) is not ALL:
            return (
                f"{case.workload} with {', '.join(workload.FEATURES[m] for m in missing)} not implemented "
                f"by {self.name}"
            )
        return None

    def prepare(self, case: Case, inputs: dict) -> Kernel:
        reason = self.unavailable()
        if reason:
            raise BackendUnavailable(f"backend {self.name!r} unavailable: {reason}")
        reason = self.unsupported(case)
        if reason:
            raise HeteroError(reason)
        return self._prepare(case, inputs)

    # -- hooks ----------------------------------------------------------------------------------------
    @classmethod
    def _unavailable(cls) -> str | None:
        return None

    def device(self) -> Device:
        raise NotImplementedError

    def _prepare(self, case: Case, inputs: dict) -> Kernel:
        raise NotImplementedError

    def warmup(self) -> None:
        """Compile whatever can be compiled ahead (JIT kernels); bench.run times this as compile time."""
