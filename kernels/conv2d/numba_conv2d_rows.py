"""Dense float32 conv2d with few input channels (a first layer: RGB) on AVX2 CPUs: output rows, vectorized along W.

Why a path of its own: with C < 16 the reduction C*R*S is short (48 for a 3x4x4 kernel), so an output takes few
multiply-adds, and numba_conv2d's IM2COL (col (C*R*S, cols), sgemm into (cols, K), a transposed copy-out) spends
as long moving data as multiplying. Here the output is computed in its own layout, (K, P, Q) per image: a tile is
KT output channels x 8*VW consecutive columns of one output row, held in KT*VW ymm accumulators over the whole
reduction and stored straight to out with the bias. Nothing is packed per tile and nothing is transposed.

Layouts:
  xph (C, sh, sw, Hph, Wph) per image: numba_phases' stride-phase split, so tap (c, r, s) of columns q0..q0+8*VW
      of output row p reads one contiguous run of xph at p*Wph + q0 + toff[(c*R + r)*S + s].
  wp  (ceil(K/KT), C*R*S*KT): per block of KT output channels, tap-major, the KT channels innermost (pack_weights);
      the pad channels of a last partial block are zeros.
Microkernel (_make_rows, LLVM IR): per tap, VW vector loads of xph, kt broadcasts of wp, kt*VW FMAs; the bias is
  added once at the end. KT=4, VW=2 keeps 8 accumulators, what two FMA pipes of 4-cycle latency need in flight,
  for 6 loads a tap. Instructions per tap, as disassembled (rows_asm): 2 vmovups, 4 vbroadcastss, 8 vfmadd231ps.
Columns: a row's last tile is moved back to overlap the one before (it stores the same values twice), so any
  Q >= 8 works. Output channels: a last partial block runs the kernel built for fewer (kt < KT).
Loop order per image: row, column tile, channel block. A column tile's input runs (C*R*S runs of 8*VW floats)
  stay in L1 while every channel block uses them, and so do all the weights (C*R*S*K floats).
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from hetero.kernels.conv2d.numba_phases import fill_phases
from hetero.kernels.numba_intrinsics import array_data, avx2_without_avx512, splat

KT, VW, LANES = 4, 2, 8  # output channels a tile, ymm vectors a tile along W, floats a ymm vector
MAX_CHANNELS = 16  # from 16 input channels on, the GEMM-shaped paths have enough multiply-adds per output


def applies() -> bool:
    """AVX2 and FMA (the microkernel's instructions) and no AVX-512, the CPUs this path was measured on; AVX-512
    hosts keep numba_conv2d's IM2COL, whose sgemm uses the wider registers."""
    return avx2_without_avx512()


def takes(C: int, Q: int) -> bool:
    """Whether a dense conv with C input channels and Q output columns runs here."""
    return C < MAX_CHANNELS and Q >= LANES and applies()


def _make_rows(kt: int, vw: int, block: int = KT):
    """The microkernel for kt output channels and vw vectors of columns, as a Numba intrinsic:
    out[o0 + k*ldo + j] = bias[b0 + k] + sum over taps t < ntaps of x[x0 + toff[t] + j] * w[t*block + k]
    for k < kt <= block, j < 8*vw. Flat float32 arrays, int64 offsets."""

    @intrinsic
    def rows(typingctx, x, x0, toff, ntaps, w, out, o0, ldo, bias, b0):
        sig = types.void(x, x0, toff, ntaps, w, out, o0, ldo, bias, b0)

        def codegen(context, builder, sig, args):
            x_p, t_p, w_p, o_p, b_p = (array_data(context, builder, sig.args[i], args[i]) for i in (0, 2, 4, 5, 8))
            x0_, nt_, o0_, ldo_, b0_ = (args[i] for i in (1, 3, 6, 7, 9))
            i64, vf = ir.IntType(64), ir.VectorType(ir.FloatType(), LANES)
            fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vf, [vf] * 3), "llvm.fma.v8f32")

            def vec(ptr, at):  # pointer to the 8 floats at ptr[at]
                return builder.bitcast(builder.gep(ptr, [at]), vf.as_pointer())

            def plus(a, n):
                return builder.add(a, ir.Constant(i64, n))

            zero = ir.Constant(vf, [0.0] * LANES)
            acc = [[cgutils.alloca_once_value(builder, zero) for _ in range(vw)] for _ in range(kt)]
            with cgutils.for_range(builder, nt_) as tap:
                xo = builder.add(x0_, builder.load(builder.gep(t_p, [tap.index])))
                xv = [builder.load(vec(x_p, plus(xo, LANES * v)), align=4) for v in range(vw)]
                wb = builder.mul(tap.index, ir.Constant(i64, block))
                for k in range(kt):
                    bv = splat(builder, vf, builder.load(builder.gep(w_p, [plus(wb, k)])))
                    for v in range(vw):
                        builder.store(builder.call(fma, [bv, xv[v], builder.load(acc[k][v])]), acc[k][v])
            for k in range(kt):
                bv = splat(builder, vf, builder.load(builder.gep(b_p, [plus(b0_, k)])))
                row = builder.add(o0_, builder.mul(ldo_, ir.Constant(i64, k)))
                for v in range(vw):
                    builder.store(builder.fadd(builder.load(acc[k][v]), bv), vec(o_p, plus(row, LANES * v)), align=4)
            return context.get_dummy_value()

        return sig, codegen

    return rows


_kernels = {(kt, vw): _make_rows(kt, vw) for kt in range(1, KT + 1) for vw in (1, VW)}
_r11, _r21, _r31, _r41 = (_kernels[kt, 1] for kt in range(1, KT + 1))
_r12, _r22, _r32, _r42 = (_kernels[kt, VW] for kt in range(1, KT + 1))


@numba.njit(cache=True, inline="always")
def _rows(kt, vw, x, x0, toff, w, out, o0, ldo, bias, b0):
    """_make_rows(kt, vw) for 1 <= kt <= KT, vw 1 or VW: each an unrolled kernel of its own."""
    nt = toff.size
    if vw == VW:
        if kt == 4:
            _r42(x, x0, toff, nt, w, out, o0, ldo, bias, b0)
        elif kt == 3:
            _r32(x, x0, toff, nt, w, out, o0, ldo, bias, b0)
        elif kt == 2:
            _r22(x, x0, toff, nt, w, out, o0, ldo, bias, b0)
        else:
            _r12(x, x0, toff, nt, w, out, o0, ldo, bias, b0)
    elif kt == 4:
        _r41(x, x0, toff, nt, w, out, o0, ldo, bias, b0)
    elif kt == 3:
        _r31(x, x0, toff, nt, w, out, o0, ldo, bias, b0)
    elif kt == 2:
        _r21(x, x0, toff, nt, w, out, o0, ldo, bias, b0)
    else:
        _r11(x, x0, toff, nt, w, out, o0, ldo, bias, b0)


@numba.njit(cache=True)
def _tap_offsets(C, R, S, sh, sw, dh, dw, plane, ph_cols):
    """toff (C*R*S,): where in xph tap (c, r, s) of output (0, 0) reads."""
    toff = np.empty(C * R * S, np.int64)
    for c in range(C):
        for r in range(R):
            a, ri = (r * dh) % sh, (r * dh) // sh
            for s in range(S):
                b, si = (s * dw) % sw, (s * dw) // sw
                toff[(c * R + r) * S + s] = ((c * sh + a) * sw + b) * plane + ri * ph_cols + si
    return toff


@numba.njit(parallel=True, cache=True, nogil=True)  # nogil: see numba_matmul._matmul
def _conv2d_kernel(x, wp, bias, sh, sw, ph, pw, dh, dw, R, S, nthreads, out):
    """x (N, C, H, W), wp from pack_weights, bias (K,), out (N, K, P, Q); threads take runs of output rows."""
    N, C = x.shape[0], x.shape[1]
    K, P, Q = out.shape[1], out.shape[2], out.shape[3]
    ph_rows, ph_cols = P + ((R - 1) * dh) // sh, Q + ((S - 1) * dw) // sw
    plane = ph_rows * ph_cols
    toff = _tap_offsets(C, R, S, sh, sw, dh, dw, plane, ph_cols)
    vw = VW if Q >= VW * LANES else 1
    cols, ntasks = vw * LANES, N * P
    for t in prange(nthreads):
        xph = np.zeros(C * sh * sw * plane, np.float32)
        last_n = -1
        for task in range(t * ntasks // nthreads, (t + 1) * ntasks // nthreads):
            n, p = task // P, task % P
            if n != last_n:
                fill_phases(x[n], sh, sw, ph, pw, ph_rows, ph_cols, xph)
                last_n = n
            of = out[n].reshape(K * P * Q)
            for qb in range(0, Q, cols):
                q0 = min(qb, Q - cols)
                for k0 in range(0, K, KT):
                    kt = min(KT, K - k0)
                    _rows(kt, vw, xph, p * ph_cols + q0, toff, wp[k0 // KT], of, (k0 * P + p) * Q + q0, P * Q, bias, k0)


def pack_weights(w: np.ndarray, block: int = KT) -> np.ndarray:
    """wp (ceil(K/block), C*R*S*block) from w (K, C, R, S): wp[kb, t*block + k] = w[kb*block + k] at tap
    t = (c*R + r)*S + s."""
    K = w.shape[0]
    nb = -(-K // block)
    wpad = np.zeros((nb * block, w[0].size), np.float32)
    wpad[:K] = w.reshape(K, -1)
    return np.ascontiguousarray(wpad.reshape(nb, block, -1).transpose(0, 2, 1)).reshape(nb, -1)


def conv2d(x, w, bias, stride, padding, dilation, out):
    """x (N, C, H, W), w (K, C, R, S), bias (K,), out (N, K, P, Q) with Q >= 8; float32 C-contiguous."""
    R, S = w.shape[2], w.shape[3]
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    nthreads = numba.get_num_threads()
    _conv2d_kernel(x, pack_weights(w), bias, sh, sw, ph, pw, dh, dw, R, S, nthreads, out)


@numba.njit(nogil=True)
def _probe(x, toff, w, out, bias):  # one full tile, outside any loop: what rows_asm() disassembles
    _r42(x, 0, toff, toff.size, w, out, 0, VW * LANES, bias, 0)


def rows_asm() -> str:
    """The machine code of the KT x VW microkernel as compiled for this CPU."""
    toff = np.arange(3, dtype=np.int64)
    _probe(
        np.zeros(64, np.float32),
        toff,
        np.zeros(3 * KT, np.float32),
        np.zeros(KT * VW * LANES, np.float32),
        np.zeros(KT, np.float32),
    )
    return "".join(_probe.inspect_asm().values())
