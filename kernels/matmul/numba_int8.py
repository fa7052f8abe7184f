"""int8 GEMM for the numba backend: C (M, N) int32 = A (M, K) int8 @ B (K, N) int8, exact (int32 accumulation).

Our own kernel, no library. On CPUs with AVX-512 VNNI (Zen 4, Ice Lake and later) the inner product is VPDPBUSD,
which multiplies 4 unsigned bytes by 4 signed bytes and adds the 4 products into each of 16 int32 lanes: 64
multiply-adds per instruction. A is signed, so it is offset to unsigned (a + 128, a XOR 0x80) and the excess is
taken off once per column: sum_k (a + 128) * b = a @ b + 128 * colsum(B).

Layout (packed once per call):
  Ap (Mp/MR, Kp/4, MR, 4) uint8: A + 128 in panels of MR rows, M padded to a multiple of MR and K of 4 (the pad
     128 is a zero of A); each (panel, k4) row holds the 4 bytes of each of the MR rows that one step broadcasts
  Bp (Np/NB, Kp/4, NB, 4) int8: panels of NB = 16*NR columns; each (k4, panel) row is NR zmm of 4 bytes per lane
  C is computed into Cp (Mp, Np) and the valid (M, N) copied out.
Microkernel (_tile, in LLVM IR): an MR x NB tile of C in MR*NR zmm accumulators, over all of K: per 4 values of
k, NR loads of Bp, MR 4-byte broadcasts of Ap, MR*NR VPDPBUSD. Threads take column panels (prange), each panel
(Kp*NB bytes) staying in the core's L1/L2 while row tiles stream past it.
Without VNNI, _gemm_plain's int32 loops are left to LLVM (VPMADDWD/VPMULLD on AVX2).
"""

from __future__ import annotations

import llvmlite.binding as llvm
import numba
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic

MR, NR = 8, 2  # tile: MR rows x NR zmm (16 int32 columns each): 16 accumulators of the 32 zmm registers
NB = 16 * NR
VNNI = bool(llvm.get_host_cpu_features().get("avx512vnni", False))
# LLVM 21 retyped the VNNI intrinsics' byte operands from <16 x i32> to <64 x i8>.
_BYTE_OPERANDS = llvm.llvm_version_info >= (21,)


def _data(context, builder, ty, value):
    return context.make_array(ty)(context, builder, value).data


@intrinsic
def _tile(typingctx, ap, a0, bp, b0, kq, cp, c0, ldc, corr, n0):
    """cp[c0 + i*ldc + j] = sum_k A[i, k] * B[k, j] - corr[n0 + j] for i < MR, j < NB, k < 4*kq.

    ap: flat uint8 row panel (A + 128) from a0, rows of MR*4 bytes; bp: flat int8 column panel from b0, rows of
    NB*4 bytes; cp and corr: flat int32. One pointer per operand keeps the loop within the integer registers."""
    sig = types.void(ap, a0, bp, b0, kq, cp, c0, ldc, corr, n0)

    def codegen(context, builder, sig, args):
        a_p, b_p, c_p, r_p = (_data(context, builder, sig.args[i], args[i]) for i in (0, 2, 5, 8))
        a0_, b0_, kq_, c0_, ldc_, n0_ = (args[i] for i in (1, 3, 4, 6, 7, 9))
        i32, i64 = ir.IntType(32), ir.IntType(64)
        v16 = ir.VectorType(i32, 16)
        opv = ir.VectorType(ir.IntType(8), 64) if _BYTE_OPERANDS else v16
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(v16, [v16, opv, opv]), "llvm.x86.avx512.vpdpbusd.512"
        )
        acc = [[cgutils.alloca_once_value(builder, ir.Constant(v16, None)) for _ in range(NR)] for _ in range(MR)]
        for row in acc:
            for slot in row:
                builder.store(ir.Constant(v16, [0] * 16), slot)
        zero16 = ir.Constant(ir.VectorType(i32, 16), [0] * 16)
        with cgutils.for_range(builder, kq_) as loop:
            k = loop.index
            base = builder.add(b0_, builder.mul(k, ir.Constant(i64, NB * 4)))
            bv = []
            for j in range(NR):
                p = builder.gep(b_p, [builder.add(base, ir.Constant(i64, 64 * j))])
                bv.append(builder.bitcast(builder.load(builder.bitcast(p, v16.as_pointer()), align=1), opv))
            for i in range(MR):
                at = builder.add(a0_, builder.add(builder.mul(k, ir.Constant(i64, 4 * MR)), ir.Constant(i64, 4 * i)))
                word = builder.load(builder.bitcast(builder.gep(a_p, [at]), i32.as_pointer()), align=1)
                av = builder.shuffle_vector(
                    builder.insert_element(ir.Constant(v16, None), word, ir.Constant(i32, 0)),
                    ir.Constant(v16, None),
                    zero16,
                )
                av = builder.bitcast(av, opv)
                for j in range(NR):
                    builder.store(builder.call(fn, [builder.load(acc[i][j]), av, bv[j]]), acc[i][j])
        for i in range(MR):
            for j in range(NR):
                off = builder.add(n0_, ir.Constant(i64, 16 * j))
                cv = builder.load(builder.bitcast(builder.gep(r_p, [off]), v16.as_pointer()), align=4)
                at = builder.add(c0_, builder.add(builder.mul(ldc_, ir.Constant(i64, i)), ir.Constant(i64, 16 * j)))
                dst = builder.bitcast(builder.gep(c_p, [at]), v16.as_pointer())
                builder.store(builder.sub(builder.load(acc[i][j]), cv), dst, align=4)
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(cache=True, nogil=True, parallel=True)
def _pack(a, b, Mp, Kp, Np):
    """(Ap, Bp, corr): the module docstring's layout; corr (Np,) = 128 * colsum(B)."""
    M, K = a.shape
    N = b.shape[1]
    au = a.view(np.uint8)
    ap = np.empty((Mp // MR, Kp // 4, MR, 4), np.uint8)
    for ip in prange(Mp // MR):
        for k4 in range(Kp // 4):
            for i in range(MR):
                for t in range(4):  # no division in the loop: an index past A's end is its zero, 128
                    k, m = 4 * k4 + t, ip * MR + i
                    ap[ip, k4, i, t] = au[m, k] ^ np.uint8(0x80) if m < M and k < K else np.uint8(0x80)
    bp = np.empty((Np // NB, Kp // 4, NB, 4), np.int8)
    corr = np.zeros(Np, np.int32)
    for jp in prange(Np // NB):
        for k4 in range(Kp // 4):
            for t in range(4):
                k = 4 * k4 + t
                for j in range(NB):
                    n = jp * NB + j
                    v = b[k, n] if k < K and n < N else np.int8(0)
                    bp[jp, k4, j, t] = v
                    corr[n] += np.int32(v) * 128
    return ap, bp, corr


@numba.njit(cache=True, nogil=True, parallel=True)
def _gemm_vnni(a, b, out):  # a (M, K) int8, b (K, N) int8, out (M, N) int32
    M, K = a.shape
    N = b.shape[1]
    Mp, Kp, Np = -(-M // MR) * MR, -(-K // 4) * 4, -(-N // NB) * NB
    ap, bp, corr = _pack(a, b, Mp, Kp, Np)
    cp = out if (Mp == M and Np == N) else np.empty((Mp, Np), np.int32)
    af, bf, cf = ap.reshape(-1), bp.reshape(-1), cp.reshape(-1)
    kq = Kp // 4
    for jp in prange(Np // NB):
        for i0 in range(0, Mp, MR):
            _tile(af, i0 * Kp, bf, jp * kq * NB * 4, kq, cf, i0 * Np + jp * NB, Np, corr, jp * NB)
    if cp.shape[0] != M or cp.shape[1] != N:
        out[:, :] = cp[:M, :N]


@numba.njit(cache=True, nogil=True, parallel=True)
def _gemm_plain(a, b, out):  # a (M, K) int8, b (K, N) int8, out (M, N) int32: int32 loops, vectorized by LLVM
    M, K = a.shape
    N = b.shape[1]
    for i in prange(M):
        row = np.zeros(N, np.int32)
        for k in range(K):
            aik = np.int32(a[i, k])
            for j in range(N):
                row[j] += aik * np.int32(b[k, j])
        out[i, :] = row


def gemm(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out (M, N) int32 = a (M, K) int8 @ b (K, N) int8, all C-contiguous."""
    (_gemm_vnni if VNNI else _gemm_plain)(a, b, out)


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """a (M, K) @ b (K, N), or batched: a (batch, M, K) @ b (batch, K, N); int8 in, int32 out."""
    if a.ndim == 2:
        gemm(a, b, out)
        return
    for i in range(a.shape[0]):
        gemm(a[i], b[i], out[i])


def warmup() -> None:
    a = np.ones((9, 5), np.int8)
    matmul(a, np.ascontiguousarray(a.T), np.empty((9, 9), np.int32))


@numba.njit(nogil=True)
def _tile_probe(ap, bp, corr, cp, kq):  # one tile, outside prange: what tile_asm() disassembles
    _tile(ap, 0, bp, 0, kq, cp, 0, NB, corr, 0)


def tile_asm() -> str:
    """The machine code of the microkernel as compiled for this CPU (VPDPBUSD where it has AVX-512 VNNI)."""
    ap, bp = np.zeros(4 * MR, np.uint8), np.zeros(4 * NB, np.int8)
    _tile_probe(ap, bp, np.zeros(NB, np.int32), np.zeros(MR * NB, np.int32), 1)
    return "".join(_tile_probe.inspect_asm().values())
