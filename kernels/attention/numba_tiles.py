"""The flash kernel's two block GEMMs as our own AVX2 register tiles, with nothing packed per call but the keys.

Why not sgemm: a flash block GEMM is short in one dimension (D = 64 for scores, one key block for p @ v), and
sgemm repacks both operands on every call, so on the kernel's block shapes it stays well short of the peak its
microkernel reaches on big ones. Here every operand is read where it lies except the keys, packed once per call:
  scores  s (rows, n)  = q (rows, D) @ k^T            A = q rows,  B = key panels kp (D, 16), reduction over D
  values  acc (rows, Dv) = alpha * acc + p (rows, n) @ v (n, Dv)   A = p rows,  B = value rows, reduction over n

One microkernel does both: C[r, :] = alpha[r] * C[r, :] (or nothing) + sum_t A[r, t] * B[t, :] for MR = 6 rows
and 8*vw columns, held in 6*vw ymm accumulators (12 at vw = 2, what two FMA pipes of 4-cycle latency need, with
2 B vectors and one broadcast left of the 16 registers). Per reduction step: vw vector loads of B, 6 broadcasts
of A, 6*vw FMAs. Rows come in whole tiles: callers give A and C at least MR - 1 rows of slack past the last row
they want (those rows are computed and never read).
"""

from __future__ import annotations

import llvmlite.binding as llvm
import numba
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic

MR, LANES, PANEL = 6, 8, 16  # rows a tile, floats a ymm vector, keys a packed key panel (2 vectors)
_FEATURES = llvm.get_host_cpu_features()


def applies(Dv: int) -> bool:
    """AVX2 and FMA and no AVX-512 (the CPUs these tiles were measured on; AVX-512 hosts keep sgemm, whose
    microkernel uses the wider registers), and a value head size of whole vectors."""
    f = _FEATURES
    return bool(f.get("avx2") and f.get("fma") and not f.get("avx512f")) and Dv % LANES == 0


def _data(context, builder, ty, value):
    return context.make_array(ty)(context, builder, value).data


def _splat(builder, vf, s):
    """The float s in every lane of vf (a vbroadcastss)."""
    i32 = ir.IntType(32)
    one = builder.insert_element(ir.Constant(vf, None), s, ir.Constant(i32, 0))
    return builder.shuffle_vector(one, ir.Constant(vf, None), ir.Constant(ir.VectorType(i32, LANES), [0] * LANES))


def _make_tile(vw: int, scaled: bool):
    """The MR x 8*vw microkernel as a Numba intrinsic on flat float32 arrays with int64 offsets:
    c[c0 + r*ldc + j] = [alpha[al0 + r] * c[c0 + r*ldc + j] +] sum_{t < kdim} a[a0 + r*lda + t] * b[b0 + t*ldb + j]
    for r < MR, j < 8*vw; the bracketed term only when scaled."""

    @intrinsic
    def tile(typingctx, a, a0, lda, b, b0, ldb, kdim, c, c0, ldc, alpha, al0):
        sig = types.void(a, a0, lda, b, b0, ldb, kdim, c, c0, ldc, alpha, al0)

        def codegen(context, builder, sig, args):
            a_p, b_p, c_p, al_p = (_data(context, builder, sig.args[i], args[i]) for i in (0, 3, 7, 10))
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
                    av = _splat(builder, vf, builder.load(builder.gep(a_p, [at(a0_, r, lda_, t)])))
                    for v in range(vw):
                        builder.store(builder.call(fma, [av, bv[v], builder.load(acc[r][v])]), acc[r][v])
            for r in range(MR):
                al = _splat(builder, vf, builder.load(builder.gep(al_p, [builder.add(al0_, ir.Constant(i64, r))])))
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
def _tile(vw, scaled, a, a0, lda, b, b0, ldb, kdim, c, c0, ldc, alpha, al0):
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


@numba.njit(cache=True)
def scores(q, r0, mr, kp, p0, npan, s, vis0):
    """s[i, :16*npan] = q[r0 + i] @ (key panels p0 .. p0+npan)^T for i < mr, in whole tiles of MR rows, where
    row i sees the first vis0 + i keys (causal); a panel no row of a tile sees is left unwritten.

    q (rows, D) C-contiguous with rows >= r0 + ceil(mr/MR)*MR; kp (panels, D, 16) from pack_keys; s flat, room for
    ceil(mr/MR)*MR rows of 16*npan."""
    D = q.shape[1]
    ld = PANEL * npan
    qf = q.reshape(q.size)
    kf = kp.reshape(kp.size)
    for pn in range(npan):  # one key panel (D x 16 floats) stays in L1 while every row tile reads it
        first = PANEL * pn - vis0 - MR + 2  # row tiles i >= first have a last row that sees a key of this panel
        for i in range(max(0, -(-first // MR) * MR), mr, MR):
            _tile(2, False, qf, (r0 + i) * D, D, kf, (p0 + pn) * D * PANEL, PANEL, D, s, i * ld + pn * PANEL, ld, s, 0)


@numba.njit(cache=True)
def values(p, ldp, mr, vp, j0, n, acc, r0, alpha, vis0):
    """acc[r0 + i] = alpha[i] * acc[r0 + i] + p[i, :n] @ v[j0 : j0+n] for i < mr, in whole tiles of MR rows, where
    row i sees the first vis0 + i keys (causal; p is 0 past them), so a tile reads no further than its last row.

    p flat (rows ldp apart, ceil(mr/MR)*MR of them); vp (panels, S, 16) from pack_values; acc (rows, Dv)
    C-contiguous, Dv a multiple of 8, with rows >= r0 + ceil(mr/MR)*MR; alpha with as many entries."""
    S, Dv = vp.shape[1], acc.shape[1]
    vf = vp.reshape(vp.size)
    af = acc.reshape(acc.size)
    for d0 in range(0, Dv, PANEL):  # a value panel (n x 16 floats, contiguous) is read by every row tile in turn
        vw = min(2, (Dv - d0) // LANES)
        for i in range(0, mr, MR):
            ni = min(n, vis0 + i + MR - 1)
            b0 = d0 * S + j0 * PANEL  # panel d0 // 16 starts at (d0 // 16) * S * 16
            _tile(vw, True, p, i * ldp, ldp, vf, b0, PANEL, ni, af, (r0 + i) * Dv + d0, Dv, alpha, i)


@numba.njit(parallel=True, cache=True)
def _pack_keys(k, kp):
    B, H, S, D = k.shape
    npan = kp.shape[2]
    for t in prange(B * H * npan):
        b, h, pn = t // (H * npan), (t // npan) % H, t % npan
        dst = kp[b, h, pn]  # (D, 16)
        for j in range(PANEL):
            key = pn * PANEL + j
            for d in range(D):
                dst[d, j] = k[b, h, key, d] if key < S else np.float32(0.0)


def pack_keys(k: np.ndarray) -> np.ndarray:
    """kp (B, H, ceil(S/16), D, 16) from k (B, H, S, D): kp[b, h, p, d, j] = k[b, h, 16p + j, d], zeros past S."""
    B, H, S, D = k.shape
    kp = np.empty((B, H, -(-S // PANEL), D, PANEL), np.float32)
    _pack_keys(k, kp)
    return kp


def pack_values(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(vp, poison) from v (B, H, S, Dv): vp (B, H, ceil(Dv/16), S, 16), vp[b, h, p, j, c] = v[b, h, j, 16p + c], zeros
    past Dv; poison (B, H, Dv) NaN where column d of v[b, h] holds a NaN or inf, else 0 (read in the same pass: the
    attention kernel adds it to its output, as 0 * inf is NaN in the reference).

    Why pack: the rows of a 16-column strip of v lie Dv floats apart, so on a 4-way cache-set stride (Dv = 64) a
    strip of 256 rows maps to a quarter of L1's sets and no longer fits; packed, the strip is contiguous."""
    B, H, S, Dv = v.shape
    vp = np.empty((B, H, -(-Dv // PANEL), S, PANEL), np.float32)
    poison = np.empty((B, H, Dv), np.float32)
    _pack_values(v, vp, poison)
    return vp, poison


@numba.njit(parallel=True, cache=True)  # no fastmath: x * 0 must stay NaN for a NaN or inf x
def _pack_values(v, vp, poison):
    B, H, S, Dv = v.shape
    npan = vp.shape[2]
    for t in prange(B * H * npan):
        b, h, pn = t // (H * npan), (t // npan) % H, t % npan
        dst = vp[b, h, pn]  # (S, 16)
        nan = np.zeros(PANEL, np.float32)  # per column: 0, or NaN once a non-finite value was seen
        for j in range(S):
            for c in range(PANEL):
                d = pn * PANEL + c
                x = v[b, h, j, d] if d < Dv else np.float32(0.0)
                dst[j, c] = x
                nan[c] += x * np.float32(0.0)
        for c in range(min(PANEL, Dv - pn * PANEL)):
            poison[b, h, pn * PANEL + c] = nan[c]


@numba.njit(nogil=True)
def _probe(a, b, c, alpha):  # one full tile, outside any loop: what tile_asm() disassembles
    _t2s(a, 0, 4, b, 0, PANEL, 4, c, 0, PANEL, alpha, 0)


def tile_asm() -> str:
    """The machine code of the MR x 16 microkernel (scaled form) as compiled for this CPU."""
    z = np.zeros(MR * PANEL, np.float32)
    _probe(np.zeros(MR * 4, np.float32), np.zeros(4 * PANEL, np.float32), z, np.zeros(MR, np.float32))
    return "".join(_probe.inspect_asm().values())
