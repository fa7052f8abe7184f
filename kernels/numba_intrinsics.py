"""LLVM operations that Numba's nopython mode has no spelling for, as @intrinsic functions on float32 arrays."""

from __future__ import annotations

import llvmlite.binding as llvm
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_FEATURES = llvm.get_host_cpu_features()


def avx2_without_avx512() -> bool:
    """AVX2 and FMA and no AVX-512: the CPUs our ymm microkernels (numba_fma_tile, the rows and blocked conv2d
    kernels) were measured on. AVX-512 hosts keep the library paths, whose kernels use the wider registers."""
    f = _FEATURES
    return bool(f.get("avx2") and f.get("fma") and not f.get("avx512f"))


def array_data(context, builder, ty, value):
    """The data pointer of a Numba array argument (type ty, LLVM value) inside an intrinsic's codegen."""
    return context.make_array(ty)(context, builder, value).data


def splat(builder, vf, s):
    """The scalar s in every lane of the vector type vf (on x86 a broadcast)."""
    i32 = ir.IntType(32)
    one = builder.insert_element(ir.Constant(vf, None), s, ir.Constant(i32, 0))
    return builder.shuffle_vector(one, ir.Constant(vf, None), ir.Constant(ir.VectorType(i32, vf.count), [0] * vf.count))


def _prefetch(rw: int):
    """An intrinsic (arr, idx) -> None: llvm.prefetch of the cache line holding arr's idx-th element (flat, C
    order), for reading (rw 0) or writing (rw 1), kept in every cache level (locality 3)."""

    def prefetch(typingctx, arr, idx):
        sig = types.void(arr, idx)

        def codegen(context, builder, sig, args):
            i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
            ptr = builder.gep(array_data(context, builder, sig.args[0], args[0]), [args[1]])
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch.p0"
            )
            builder.call(fn, [builder.bitcast(ptr, i8p)] + [ir.Constant(i32, v) for v in (rw, 3, 1)])
            return context.get_dummy_value()

        return sig, codegen

    return prefetch


# Hints that arr's flat element idx is about to be written / read. A prefetch never faults; callers keep idx in
# bounds all the same.
prefetch_write = intrinsic(_prefetch(1))
prefetch_read = intrinsic(_prefetch(0))


def _transposed(builder, rows):
    """The n x n transpose of n rows of n-vectors (n a power of 2): log2(n) rounds of n two-vector shuffles, round d
    swapping the off-diagonal d x d blocks of every 2d x 2d block."""
    n, rows = len(rows), list(rows)
    d = 1
    while d < n:
        for i in (i for i in range(n) if not i & d):
            lo = [j if not j & d else n + j - d for j in range(n)]
            hi = [j + d if not j & d else n + j for j in range(n)]
            rows[i], rows[i + d] = (
                builder.shuffle_vector(rows[i], rows[i + d], ir.Constant(ir.VectorType(ir.IntType(32), n), mask))
                for mask in (lo, hi)
            )
        d *= 2
    return rows


@intrinsic
def transpose8(typingctx, src, s0, s_step, dst, d0, d_step):
    """dst[d0 + j*d_step + i] = src[s0 + i*s_step + j] for i, j < 8, on flat arrays: float32 dst, float32 or int8
    src (widened exactly): an 8x8 transpose in registers (8 row loads, 3 rounds of 8 shuffles, 8 row stores)."""
    if dst.dtype != types.float32 or src.dtype not in (types.float32, types.int8):
        return None
    sig = types.void(src, s0, s_step, dst, d0, d_step)
    widen = src.dtype == types.int8

    def codegen(context, builder, sig, args):
        src_p, dst_p = (array_data(context, builder, sig.args[i], args[i]) for i in (0, 3))
        f8 = ir.VectorType(ir.FloatType(), 8)
        s8 = ir.VectorType(ir.IntType(8), 8) if widen else f8

        def row(base, start, step, i, vty):  # pointer to the 8 elements at base[start + i*step]
            at = builder.add(start, builder.mul(step, ir.Constant(start.type, i)))
            return builder.bitcast(builder.gep(base, [at]), vty.as_pointer())

        rows = [builder.load(row(src_p, args[1], args[2], i, s8), align=1) for i in range(8)]
        rows = _transposed(builder, [builder.sitofp(r, f8) if widen else r for r in rows])
        for j in range(8):
            builder.store(rows[j], row(dst_p, args[4], args[5], j, f8), align=4)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def transpose16_add(typingctx, src, s0, s_step, dst, d0, d_step, vec, v0):
    """dst[d0 + j*d_step + i] = src[s0 + i*s_step + j] + vec[v0 + j] for i, j < 16, on flat float32 arrays.

    A 16x16 transpose in registers: 16 row loads (vec added to each), 4 rounds of 16 two-vector shuffles, 16 row
    stores. Round d swaps the off-diagonal d x d blocks of every 2d x 2d block."""
    sig = types.void(src, s0, s_step, dst, d0, d_step, vec, v0)

    def codegen(context, builder, sig, args):
        src_p, dst_p, vec_p = (array_data(context, builder, sig.args[i], args[i]) for i in (0, 3, 6))
        vptr = ir.VectorType(ir.FloatType(), 16).as_pointer()
        idx = args[1].type

        def row(base, start, step, i):  # pointer to the 16 floats at base[start + i*step]
            at = builder.add(start, builder.mul(step, ir.Constant(idx, i)))
            return builder.bitcast(builder.gep(base, [at]), vptr)

        v = builder.load(row(vec_p, args[7], args[2], 0), align=4)
        rows = [builder.fadd(builder.load(row(src_p, args[1], args[2], i), align=4), v) for i in range(16)]
        rows = _transposed(builder, rows)
        for j in range(16):
            builder.store(rows[j], row(dst_p, args[4], args[5], j), align=4)
        return context.get_dummy_value()

    return sig, codegen


def _deinterleave(n: int):
    """An intrinsic (src, s0, dst, d0, d_step) -> None: dst[d0 + b*d_step + i] = src[s0 + n*i + b] for i < 8,
    b < n, on flat arrays: float32 dst, float32 or int8 src (widened exactly). One 8n-element load and n
    shuffles: the n stride phases of 8n consecutive elements, where a loop of stride-n loads stays scalar (LLVM
    does not vectorise it in Numba). d_step may be any distance, negative too."""

    def deinterleave(typingctx, src, s0, dst, d0, d_step):
        if dst.dtype != types.float32 or src.dtype not in (types.float32, types.int8):
            return None
        sig = types.void(src, s0, dst, d0, d_step)
        widen = src.dtype == types.int8

        def codegen(context, builder, sig, args):
            src_p, dst_p = (array_data(context, builder, sig.args[i], args[i]) for i in (0, 2))
            f8, ety = ir.VectorType(ir.FloatType(), 8), ir.IntType(8) if widen else ir.FloatType()
            vty = ir.VectorType(ety, 8 * n)
            whole = builder.load(builder.bitcast(builder.gep(src_p, [args[1]]), vty.as_pointer()), align=1)
            for b in range(n):
                mask = ir.Constant(ir.VectorType(ir.IntType(32), 8), [b + n * i for i in range(8)])
                part = builder.shuffle_vector(whole, ir.Constant(vty, None), mask)
                if widen:
                    part = builder.sitofp(part, f8)
                at = builder.add(args[3], builder.mul(args[4], ir.Constant(args[4].type, b)))
                builder.store(part, builder.bitcast(builder.gep(dst_p, [at]), f8.as_pointer()), align=4)
            return context.get_dummy_value()

        return sig, codegen

    return deinterleave


# The 2 and 4 stride phases of 16 and 32 consecutive elements (a stride-2 or stride-4 conv's input row).
deinterleave2 = intrinsic(_deinterleave(2))
deinterleave4 = intrinsic(_deinterleave(4))
