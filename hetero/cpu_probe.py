"""Measure what a CPU's peak and roofline rest on: its clock under load and its memory bandwidth.

The clock comes from 12 independent chains of scalar fp32 FMAs: every x86 core this project meets issues two
scalar FMAs a cycle (two FMA pipes) and an FMA's latency is at most 6 cycles, so 12 chains keep both pipes full
and cycles = FMAs / 2. The chains start apart and the multiplier and addend arrive at run time: given constants
and identical chains, LLVM merges chains or, under fastmath, folds two steps into one, and the count no longer
matches the work. Scalar code sidesteps the vector-width question (some CPUs split a 512-bit FMA over two
256-bit pipes, others run it whole), which hetero.devices answers from the CPU model. But some CPUs lower their
clock under 512-bit FMAs, and the peak counts those: on AVX-512 CPUs, wide_clock_ghz runs the same 12 chains as
512-bit vectors (llvm.fma.v16f32, which LLVM cannot merge or fold either: one chain's lanes start apart too) and
divides by the pipes that take a 512-bit FMA. The loops run on every core at once, since an all-core clock is
what the peak counts. Bandwidth is a STREAM triad over arrays far
larger than the caches, counting three streams (two reads and a write).
"""

from __future__ import annotations

import time

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

FMA_CHAINS = 12
FMAS_PER_CYCLE = 2  # scalar FMAs issued a cycle per core (two FMA pipes)


@njit(fastmath=True, cache=True, nogil=True)
def _fma_chains(n, m, c):  # 12 dependency chains; fastmath lets LLVM fuse a*m + c into one vfmadd
    # twelve scalar locals written out, not an array: they must stay in registers, one chain each; distinct starts,
    # so no two chains are the same computation
    a0, a1, a2, a3, a4, a5 = (
        np.float32(1.0),
        np.float32(1.1),
        np.float32(1.2),
        np.float32(1.3),
        np.float32(1.4),
        np.float32(1.5),
    )
    b0, b1, b2, b3, b4, b5 = (
        np.float32(0.5),
        np.float32(0.6),
        np.float32(0.7),
        np.float32(0.8),
        np.float32(0.9),
        np.float32(0.95),
    )
    for _ in range(n):
        a0 = a0 * m + c
        a1 = a1 * m + c
        a2 = a2 * m + c
        a3 = a3 * m + c
        a4 = a4 * m + c
        a5 = a5 * m + c
        b0 = b0 * m + c
        b1 = b1 * m + c
        b2 = b2 * m + c
        b3 = b3 * m + c
        b4 = b4 * m + c
        b5 = b5 * m + c
    return a0 + a1 + a2 + a3 + a4 + a5 + b0 + b1 + b2 + b3 + b4 + b5


@njit(parallel=True, cache=True)
def _fma_all_cores(n, out, mc):  # out: (threads,) one chain set per thread; mc: (2,) multiplier, addend
    for t in prange(out.size):
        out[t] = _fma_chains(n, mc[0], mc[1])


@intrinsic
def _zmm_chains(typingctx, n, m):
    """FMA_CHAINS chains of 16-lane float32 FMAs, acc = acc * m + m, n steps each; returns one lane of their sum."""
    sig = types.float32(n, m)

    def codegen(context, builder, sig, args):
        i32, vf = ir.IntType(32), ir.VectorType(ir.FloatType(), 16)
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vf, [vf] * 3), "llvm.fma.v16f32")
        one = builder.insert_element(ir.Constant(vf, None), args[1], ir.Constant(i32, 0))
        mv = builder.shuffle_vector(one, ir.Constant(vf, None), ir.Constant(ir.VectorType(i32, 16), [0] * 16))
        accs = [
            cgutils.alloca_once_value(builder, ir.Constant(vf, [1.0 + 0.01 * c + 0.001 * j for j in range(16)]))
            for c in range(FMA_CHAINS)
        ]
        with cgutils.for_range(builder, args[0]):
            for acc in accs:
                builder.store(builder.call(fma, [builder.load(acc), mv, mv]), acc)
        total = builder.load(accs[0])
        for acc in accs[1:]:
            total = builder.fadd(total, builder.load(acc))
        return builder.extract_element(total, ir.Constant(i32, 0))

    return sig, codegen


@njit(cache=True, nogil=True)
def _wide_chains(n, m):
    return _zmm_chains(n, m)


@njit(parallel=True, cache=True)
def _wide_all_cores(n, out, mc):  # as _fma_all_cores, 512-bit
    for t in prange(out.size):
        out[t] = _wide_chains(n, mc[0])


@njit(parallel=True, fastmath=True, cache=True)
def _triad(a, b, c, s):  # a, b, c: (n,) float64
    for i in prange(a.size):
        a[i] = b[i] + s * c[i]


def clock_ghz(threads: int, seconds: float = 1.0) -> list[float]:
    """Per-repetition clock estimates (GHz) with `threads` cores busy, about `seconds` in all."""
    return _clock(_fma_all_cores, threads, seconds, FMAS_PER_CYCLE)


def wide_clock_ghz(threads: int, pipes: int, seconds: float = 1.0) -> list[float]:
    """clock_ghz under 512-bit FMAs, on a CPU with AVX-512 whose cores each take `pipes` of them a cycle
    (hetero.devices.fp32_lanes)."""
    return _clock(_wide_all_cores, threads, seconds, pipes)


def _clock(loop, threads: int, seconds: float, per_cycle: int) -> list[float]:
    """GHz = FMA instructions the `loop` of FMA_CHAINS chains issued on each core / seconds / per_cycle."""
    out, mc = np.zeros(threads, np.float32), np.array([0.999, 0.001], np.float32)
    loop(1000, out, mc)  # compile (or load from cache) and wake the threads
    n, samples, spent = 1 << 20, [], 0.0
    while spent < seconds:
        t0 = time.perf_counter()
        loop(n, out, mc)
        dt = time.perf_counter() - t0
        spent += dt
        if dt < 0.05:  # too short to time well: grow and try again
            n *= 4
            continue
        samples.append(FMA_CHAINS * n / dt / per_cycle / 1e9)
    return samples


class TriadKernel:
    """One STREAM triad over three arrays of `mib` MiB each, as a kernel: a call returns its wall seconds, and
    `bytes` / those seconds is the bandwidth (three streams counted). bench.run times it in turns with a case's
    backends, so the bandwidth a kernel's GB/s is a share of comes from the same moments as the kernel's time."""

    timing = "measured-wall-clock"

    def __init__(self, mib: int):
        n = mib * (1 << 20) // 8
        self.a, self.b, self.c = np.empty(n), np.ones(n), np.full(n, 2.0)
        self.bytes = 3 * 8 * n

    def __call__(self) -> float:
        t0 = time.perf_counter()
        _triad(self.a, self.b, self.c, 3.0)
        return time.perf_counter() - t0


def triad_gbps(mib: int = 256, reps: int = 5) -> list[float]:
    """Per-repetition STREAM-triad bandwidths (GB/s, three streams) over three arrays of `mib` MiB each."""
    triad = TriadKernel(mib)
    triad()  # compile (or load from cache) and touch the arrays
    return [triad.bytes / triad() / 1e9 for _ in range(reps)]
