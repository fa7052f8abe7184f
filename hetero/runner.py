"""Run cases on backends: correctness first, then timing; one result row per (case, backend).

Data flows one way: Case -> inputs -> backend.prepare -> check against the float64 reference -> measure -> row.
A wrong result becomes a row with status 'wrong' and no time, never a speedup.
"""

from __future__ import annotations

import functools
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from hetero.backends.base import MODELED, Backend
from hetero.errors import HeteroError
from hetero.ratios import add_ratios
from hetero.timing import MIN_REPS, WARMUP_S, measure, measure_interleaved
from hetero.workloads import Case, check, get, quant
from hetero.workloads.base import ITEMSIZE

COLUMNS = [
    "workload",
    "shape",
    "preset",
    "dtype",
    "backend",
    "device",
    "peer",
    "status",
    "correct",
    "max_abs_err",
    "max_rel_err",
    "quant",
    "quant_err",
    "quant_err_tensor",
    "median_s",
    "iqr_s",
    "reps",
    "noisy",
    "gflops",
    "gbps",
    "pct_peak",
    "pct_stream",
    "baseline",
    "speedup",
    "best_peer",
    "vs_best_peer",
    "timing",
    "compile_s",
    "first_call_s",
    "transfer_s",
    "emu_wall_s",
    "energy_j",
    "gflops_per_j",
    "flops",
    "bytes",
    "peak_gflops",
    "mem_gbps",
    "stream_gbps",
    "peak_source",
    "threads",
    "error",
]


# Device kinds whose kernels read the host's DRAM: their GB/s is compared with the STREAM triad measured in the run.
HOST_MEMORY = frozenset({"cpu", "opencl-cpu"})


@dataclass
class RunConfig:
    baseline: str = "numpy"
    warmup_s: float = WARMUP_S
    budget_s: float = 0.2
    min_reps: int = MIN_REPS
    seed: int = 0
    strict: bool = False
    stream_mib: int = 0  # MiB per STREAM-triad array, timed in turns with each case's backends (0: none)
    stream_gbps: float | None = None  # the last such measurement, for host-memory rows
    quant: str = "channel"  # int8 cases: how inputs are quantized (workloads.quant.SCHEMES)
    compile_s: dict = field(default_factory=dict)  # backend -> seconds spent in warmup() (JIT), filled by run
    warmup_errors: dict = field(default_factory=dict)  # backend -> why its warm-up failed


def run_one(case: Case, backend: Backend, inputs: dict, ref: np.ndarray, cfg: RunConfig) -> dict:
    """One row: prepare, run once and check, then time. Errors become a row, not an exception."""
    return run_case(case, [backend], inputs, ref, cfg)[0]


def run_case(case: Case, backends: list[Backend], inputs: dict, ref: np.ndarray, cfg: RunConfig) -> list[dict]:
    """The case's row on each backend: each prepared, run once and checked; then the correct ones timed in turns
    (timing.measure_interleaved), so a slow spell of the machine falls on all of them, and a modeled one alone
    (its time is the model's, whatever the machine is doing). Errors become rows, not exceptions."""
    rows, pending = [], []  # pending: (row index, kernel) checked correct, to be timed
    for backend in backends:
        row, kernel = _checked(case, backend, inputs, ref, cfg)
        rows.append(row)
        if kernel is not None:
            pending.append((len(rows) - 1, kernel))
    measured = [(i, k) for i, k in pending if k.timing != MODELED]
    host = [_in_host_memory(b) for b in backends]  # asked once a case: device() may query a driver
    triad = _triad_kernel(cfg.stream_mib) if cfg.stream_mib and any(host) else None  # timed in the same turns
    kernels = [k for _, k in measured] + ([triad] if triad else [])
    times = measure_interleaved(kernels, cfg.warmup_s, cfg.budget_s, cfg.min_reps)
    if triad and not isinstance(times[-1], Exception):
        cfg.stream_gbps = triad.bytes / times[-1].median / 1e9
        for on_host, row in zip(host, rows):
            row["stream_gbps"] = cfg.stream_gbps if on_host else None
    for (i, kernel), m in zip(measured, times):
        rows[i] = _timed(rows[i], kernel, m, cfg)
    for i, kernel in pending:
        if kernel.timing == MODELED:
            rows[i] = _timed(rows[i], kernel, _guarded(measure, kernel, cfg), cfg)
    return rows


def _guarded(measure_fn, kernel, cfg):
    """measure_fn's Measurement, or the exception it raised."""
    try:
        return measure_fn(kernel, cfg.warmup_s, cfg.budget_s, cfg.min_reps)
    except Exception as exc:
        return exc


def _checked(case, backend, inputs, ref, cfg) -> tuple[dict, object]:
    """(row, kernel to time): the kernel prepared and its first call checked against the reference; kernel None
    when the row is final already (skipped, wrong, or an error, each with its reason)."""
    row = _row(case, backend, cfg)
    reason = backend.unsupported(case)
    if reason:
        return {**row, "status": "skipped", "error": reason}, None
    if backend.name in cfg.warmup_errors:
        return {**row, "status": "error", "error": cfg.warmup_errors[backend.name]}, None
    try:
        kernel = backend.prepare(case, inputs)
        t0 = time.perf_counter()
        kernel()
        row["first_call_s"] = time.perf_counter() - t0
        ok, abs_err, rel_err = check(kernel.result(), ref, case.dtype)
    except Exception as exc:
        return _error_row(row, exc, cfg), None
    row.update(correct=ok, max_abs_err=abs_err, max_rel_err=rel_err, transfer_s=kernel.transfer_s, timing=kernel.timing)
    if not ok:
        err = f"output differs from the reference (max abs err {abs_err:.3g}, rel {rel_err:.3g})"
        return {**row, "status": "wrong", "error": err}, None
    return row, kernel


def _error_row(row: dict, exc: Exception, cfg: RunConfig) -> dict:
    """The row of a backend that raised: a HeteroError's one line, else the exception and where it was raised
    (a backend bug: the run goes on); with cfg.strict, raised again."""
    if cfg.strict:
        raise exc
    if isinstance(exc, HeteroError):
        return {**row, "status": "error", "error": str(exc)}
    last = traceback.extract_tb(exc.__traceback__)[-1]
    return {
        **row,
        "status": "error",
        "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
        f"({last.filename.rsplit('/', 1)[-1]}:{last.lineno})",
    }


def _timed(row: dict, kernel, m, cfg: RunConfig) -> dict:
    """The checked row with its timing: median, IQR, GFLOP/s, % of peak and of STREAM, every sample; an error row
    when timing raised."""
    if isinstance(m, Exception):
        return _error_row(row, m, cfg)
    gflops = row["flops"] / m.median / 1e9
    energy = getattr(kernel, "energy_j", None)  # measured joules per run, where the backend can (NVML)
    if energy:
        row.update(energy_j=energy, gflops_per_j=row["flops"] / energy / 1e9)
    # samples: every timed repetition's seconds, for samples.csv (not a bench.csv column)
    return {
        **row,
        "status": "ok",
        "median_s": m.median,
        "iqr_s": m.iqr,
        "reps": m.reps,
        "noisy": m.noisy,
        "gflops": gflops,
        "samples": list(m.samples),
        "gbps": row["bytes"] / m.median / 1e9,
        "pct_peak": 100 * gflops / row["peak_gflops"] if row["peak_gflops"] else None,
        "pct_stream": 100 * row["bytes"] / m.median / 1e9 / row["stream_gbps"] if row["stream_gbps"] else None,
        "emu_wall_s": getattr(kernel, "emu_wall_s", None),  # fpga-emu: the emulation's own wall time
    }


def _row(case: Case, backend: Backend, cfg: RunConfig) -> dict:
    """What a row says before anything runs: the case, the backend and its device, FLOPs and bytes, the peak."""
    workload, p = get(case.workload), case.p
    dev = backend.device()
    return dict(
        workload=case.workload,
        shape=case.shape,
        preset=case.preset or "",
        dtype=case.dtype,
        backend=backend.name,
        device=dev.name,
        peer=backend.peer,
        timing=backend.timing,
        flops=workload.flops(p),
        bytes=workload.bytes_moved(p, ITEMSIZE[case.dtype]),
        peak_gflops=dev.peak_for(case.dtype),
        mem_gbps=dev.mem_gbps,
        stream_gbps=cfg.stream_gbps if dev.kind in HOST_MEMORY else None,
        peak_source=dev.peak_source,
        threads=backend.threads,
        compile_s=cfg.compile_s.get(backend.name),
        correct=False,
    )


def run(
    cases: Iterable[Case], backends: list[Backend], cfg: RunConfig, on_row: Callable[[dict], None] | None = None
) -> list[dict]:
    """All (case, backend) rows, ratios filled in. on_row is called after each row (progress bars)."""
    rows = []
    for case in cases:
        inputs, ref, extra = case_io(case, cfg)
        for row in run_case(case, backends, inputs, ref, cfg):
            if row["status"] != "skipped":
                row.update(extra)
            rows.append(row)
            if on_row:
                on_row(row)
    add_ratios(rows, cfg.baseline)
    return rows


def _in_host_memory(backend: Backend) -> bool:
    """Whether the backend computes in host memory: its GB/s is then a share of the STREAM triad (pct_stream)."""
    return backend.device().kind in HOST_MEMORY


@functools.lru_cache(maxsize=1)
def _triad_kernel(mib: int):
    """One TriadKernel a run (its three arrays allocated and touched once, not per case)."""
    from hetero.cpu_probe import TriadKernel

    return TriadKernel(mib)


def case_io(case: Case, cfg: RunConfig) -> tuple[dict, np.ndarray, dict]:
    """(what the backends are given, what their output must equal, columns every row of the case gets).

    float cases: the seeded inputs and their float64 reference. int8: the inputs quantized under cfg.quant and
    the exact integer product, plus quant_err (cfg.quant's) and quant_err_tensor (per-tensor scales), the
    dequantized product's error against the float reference (workloads.quant)."""
    workload = get(case.workload)
    inputs = workload.make_inputs(case, cfg.seed)
    ref = workload.reference(case, inputs)  # float64, once per case
    if case.dtype != "int8" or case.workload not in quant.INT8:
        return inputs, ref, {}
    qz = quant.quantize(case, inputs, cfg.quant)
    err = quant.accuracy(case, ref, inputs)
    extra = dict(quant=cfg.quant, quant_err=err[cfg.quant], quant_err_tensor=err["tensor"])
    return qz.inputs, quant.int_reference(case, qz), extra


def warm_up(backends: list[Backend], cfg: RunConfig) -> None:
    """JIT-compile every backend once, timed apart from its kernels (the compile_s column)."""
    for b in backends:
        t0 = time.perf_counter()
        try:
            b.warmup()
        except Exception as exc:  # reported on each of its rows by run_one; other backends go on
            if cfg.strict:
                raise
            cfg.warmup_errors[b.name] = f"warm-up failed: {type(exc).__name__}: {exc}".splitlines()[0]
        cfg.compile_s[b.name] = time.perf_counter() - t0
