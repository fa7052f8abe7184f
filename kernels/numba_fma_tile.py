"""Our float32 register tile for AVX2 CPUs (16 ymm registers), as a Numba intrinsic, shared by the flash attention
kernel's block GEMMs (kernels/attention/numba_tiles.py) and the numba GEMM (kernels/matmul/numba_sgemm.py).

C[r, :] = alpha[r] * C[r, :] (or nothing) + sum_t A[r, t] * B[t, :] for MR = 6 rows and 8*vw columns, held in
6*vw ymm accumulators (12 at vw = 2, what two FMA pipes of 4-cycle latency need, with 2 B vectors and one
broadcast left of the 16 registers). Per reduction step: vw vector loads of B, 6 broadcasts of A, 6*vw FMAs.
A's rows are read in place (lda apart); B's rows are ldb apart (a packed panel: 16). Callers give whole tiles of
rows: where fewer rows are wanted, A and C need slack rows that are computed and never read.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from hetero.kernels.numba_intrinsics import array_data, avx2_without_avx512, splat

MR, LANES, PANEL = 6, 8, 16  # rows a tile, floats a ymm vector, columns of a 2-vector tile (a packed panel)


def applies() -> bool:
    """AVX2 and FMA and no AVX-512: the CPUs this tile was measured on (AVX-512 hosts keep sgemm, whose
    microkernel uses the wider registers)."""
    return avx2_without_avx512()


def _make_tile(vw: int, scaled: bool):
    """The MR x 8*vw microkernel as a Numba intrinsic on flat float32 arrays with int64 offsets:
    c[c0 + r*ldc + j] = [alpha[al0 + r] * c[c0 + r*ldc + j] +] sum_{t < kdim} a[a0 + r*lda + t] * b[b0 + t*ldb + j]
    for r < MR, j < 8*vw; the bracketed term only when scaled."""

    @intrinsic
    def tile(typingctx, a, a0, lda, b, b0, ldb, kdim, c, c0, ldc, alpha, al0):
        sig = types.void(a, a0, lda, b, b0, ldb, kdim, c, c0, ldc, alpha, al0)

        def codegen(context, builder, sig, args):
            a_p, b_p, c_p, al_p = (array_data(context, builder, sig.args[i], args[i]) for i in (0, 3, 7, 10))
            a0_, lda_, b0_, ldb_, k_, c0_, ldc_, al0_ = (args[i] for i in (1, 2, 4, 5, 6, 8, 9, 11))
            i64, vf = ir.IntType(64), ir.VectorType(ir.FloatType(), LANES)
            fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vf, [vf] * 3), "llvm.fma.v8f32")

            def at(base, row, ld, col):  # base + row*ld + col, int64
                return builder.add(builder.add(base, builder.mul(ir.Constant(i64, row), ld)), col)

            def vec(ptr, i):  # pointer to the 8 floats at ptr[i]
                return builder.bitcast(builder.gep(ptr, [i]), vf.as_pointer())

            zero = ir.Constant(vf, [0.0] * LANES)
            acc = [[cgutils.alloca_once_value(builder, zero) for _ in range(vw)] for _ in range(MR)]
            with cgutils.for_range(builder, k_) as loop:
                t = loop.index
                brow = builder.add(b0_, builder.mul(t, ldb_))
                bv = [
                    builder.load(vec(b_p, builder.add(brow, ir.Constant(i64, LANES * v))), align=4) for v in range(vw)
                ]
                for r in range(MR):
                    av = splat(builder, vf, builder.load(builder.gep(a_p, [at(a0_, r, lda_, t)])))
                    for v in range(vw):
                        builder.store(builder.call(fma, [av, bv[v], builder.load(acc[r][v])]), acc[r][v])
            for r in range(MR):
                al = splat(builder, vf, builder.load(builder.gep(al_p, [builder.add(al0_, ir.Constant(i64, r))])))
                for v in range(vw):
                    ptr = vec(c_p, at(c0_, r, ldc_, ir.Constant(i64, LANES * v)))
                    out = builder.load(acc[r][v])
                    if scaled:
                        out = builder.call(fma, [builder.load(ptr, align=4), al, out])
                    builder.store(out, ptr, align=4)
            return context.get_dummy_value()

        return sig, codegen

    return tile


_t1, _t2, _t1s, _t2s = _make_tile(1, False), _make_tile(2, False), _make_tile(1, True), _make_tile(2, True)


@numba.njit(cache=True, inline="always")
def tile(vw, scaled, a, a0, lda, b, b0, ldb, kdim, c, c0, ldc, alpha, al0):
    """_make_tile(vw, scaled) for vw 1 or 2."""
    if scaled:
        if vw == 2:
            _t2s(a, a0, lda, b, b0, ldb, kdim, c, c0, ldc, alpha, al0)
        else:
            _t1s(a, a0, lda, b, b0, ldb, kdim, c, c0, ldc, alpha, al0)
    elif vw == 2:
        _t2(a, a0, lda, b, b0, ldb, kdim, c, c0, ldc, alpha, al0)
    else:
        _t1(a, a0, lda, b, b0, ldb, kdim, c, c0, ldc, alpha, al0)


@numba.njit(nogil=True)
def _probe(a, b, c, alpha):  # one full tile, outside any loop: what tile_asm() disassembles
    _t2s(a, 0, 4, b, 0, PANEL, 4, c, 0, PANEL, alpha, 0)


def tile_asm() -> str:
    """The machine code of the MR x 16 microkernel (scaled form) as compiled for this CPU."""
    z = np.zeros(MR * PANEL, np.float32)
    _probe(np.zeros(MR * 4, np.float32), np.zeros(4 * PANEL, np.float32), z, np.zeros(MR, np.float32))
    return "".join(_probe.inspect_asm().values())
