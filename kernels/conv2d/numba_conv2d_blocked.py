"""Dense float32 conv2d on AVX2 CPUs: our own FMA microkernel over a channel-blocked copy of the input, no BLAS.

Where it runs: CPUs with AVX2 and FMA but not AVX-512 (numba_conv2d.conv2d routes there; `applies`). There
OpenBLAS's sgemm (its Haswell core) packs both operands on every call, which the TAPS path of numba_conv2d pays
R*S times a tile; this kernel packs nothing per call: the input is laid out once per image the way the
microkernel reads it, and the weights once per call.

Layouts (Cp = C rounded up to 8, Kp = K rounded up to 16; the pads are zeros):
  xb  (Cp/8, sh, sw, Hph, Wph, 8) per image: the zero-padded input split into stride phases, as numba_conv2d's
      xph, but with 8 channels innermost. Tap (r, s) of output (p, q) reads phase ((r*dh) % sh, (s*dw) % sw) at
      row p + (r*dh)//sh, column q + (s*dw)//sw: the 8 channels of a position are one 32-byte run. int8 input
      is widened to float32 here (exact; numba_conv2d_int8 uses that).
  wp  (Kp/16, Cp*R*S*16): per block of 16 output channels, in the order the microkernel walks them: c-chunk,
      tap, 8-channel block, channel, 16 output channels (pack_weights).
  acc (tile_rows*Q, Kp): a tile's sums, one row per output position; copied to out (K, P, Q) transposed in 16x16
      register blocks, plus the bias (numba_intrinsics.transpose16_add).
Microkernel (_make_tile, LLVM IR): NW output positions x 16 output channels, in 2*NW ymm accumulators; per input
  channel: 2 vector loads of wp (16 channels), NW broadcasts of xb, 2*NW FMAs; over all taps and channels of the
  chunk. NW = 6 fills 12 of the 16 ymm registers (2 hold wp, 1 the broadcast). The positions are any NW entries
  of an offset list (pos, apos), so a block runs on across output rows: no garbage columns, and only a tile's
  last block is shorter (the same kernel built for fewer positions). Instructions per channel, as disassembled:
  2 vmovups, NW vbroadcastss, 2*NW vfmadd231ps, no spills.
Loop order per tile: c-chunk, 16-channel block, position block: the weights of a block and chunk (W_CHUNK_BYTES,
  L1-sized) are reused by every position of the tile.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from hetero.kernels.conv2d.numba_phases import phase_span
from hetero.kernels.numba_intrinsics import array_data, avx2_without_avx512, prefetch_write, transpose8, transpose16_add

NW, KB, CB = 6, 16, 8  # positions a tile, output channels a tile (2 ymm), input channels a block (xb's last axis)
TILE_BYTES = 128 * 1024  # acc of one tile (tile_rows*Q*Kp floats) stays within L2
W_CHUNK_BYTES = 32 * 1024  # weights of one 16-channel block and c-chunk, reused by every position of a tile: L1


def applies() -> bool:
    """Whether this host should run dense conv2d here: AVX2 and FMA (the microkernel's instructions) and no
    AVX-512 (whose wider registers OpenBLAS's small-matrix path in numba_conv2d uses instead)."""
    return avx2_without_avx512()


MIN_CHANNELS = 16  # input channels below which a tap's 8-channel blocks are mostly padding (a first layer's 3)


def takes(C: int, K: int) -> bool:
    """Whether a dense conv with C input and K output channels runs here: `applies` to this CPU, MIN_CHANNELS
    inputs, and a whole 16-channel output block (fewer would pad the microkernel's tile)."""
    return C >= MIN_CHANNELS and K >= KB and applies()


def _accumulators(builder, vf, nw, acc_ptrs, accf):
    """2*nw ymm accumulators: zero, or (accumulate != 0) loaded from acc_ptrs[i][v]."""
    acc = [[cgutils.alloca_once(builder, vf) for _ in range(2)] for _ in range(nw)]
    for slot in (s for row in acc for s in row):
        builder.store(ir.Constant(vf, [0.0] * 8), slot)
    with builder.if_then(builder.icmp_unsigned("!=", accf, ir.Constant(accf.type, 0))):
        for i in range(nw):
            for v in range(2):
                builder.store(builder.load(acc_ptrs[i][v], align=4), acc[i][v])
    return acc


def _channel_block(builder, fma, acc, x_p, xoffs, w_p, wb):
    """The multiply-adds of one tap and one 8-channel block: per channel j, 2 loads of wp, a broadcast of xb per
    position, 2 FMAs per position. xoffs[i]: where position i's 8 channels start in xb."""
    i32, i64, vf = ir.IntType(32), ir.IntType(64), acc[0][0].type.pointee
    splat = ir.Constant(ir.VectorType(i32, 8), [0] * 8)
    for j in range(CB):
        wv = []
        for v in range(2):
            at = builder.gep(w_p, [builder.add(wb, ir.Constant(i64, j * KB + 8 * v))])
            wv.append(builder.load(builder.bitcast(at, vf.as_pointer()), align=4))
        for i, xo in enumerate(xoffs):
            s = builder.load(builder.gep(x_p, [builder.add(xo, ir.Constant(i64, j))]))
            bv = builder.shuffle_vector(
                builder.insert_element(ir.Constant(vf, None), s, ir.Constant(i32, 0)), ir.Constant(vf, None), splat
            )
            for v in range(2):
                builder.store(builder.call(fma, [bv, wv[v], builder.load(acc[i][v])]), acc[i][v])


def _make_tile(nw: int):
    """The microkernel for nw positions as a Numba intrinsic:
    acc[apos[m0 + i] + a0 + k] (+)= sum over taps t, blocks b < ncb, channels j < 8 of
        xb[x0 + pos[m0 + i] + toff[t] + b*ldcb + j] * wp[w0 + ((t*ncb + b)*8 + j)*16 + k]     for i < nw, k < 16;
    accumulate != 0 adds to acc, else overwrites it. Flat float32 arrays, int64 offsets. Positions are any nw
    entries of pos and apos: a block may run across output rows (or, for a transposed convolution's phases, land
    every sw-th row of acc)."""

    @intrinsic
    def tile(typingctx, x, x0, pos, m0, toff, ntaps, ncb, ldcb, w, w0, acc, a0, apos, accumulate):
        sig = types.void(x, x0, pos, m0, toff, ntaps, ncb, ldcb, w, w0, acc, a0, apos, accumulate)

        def codegen(context, builder, sig, args):
            x_p, p_p, t_p, w_p, c_p, ap_p = (
                array_data(context, builder, sig.args[i], args[i]) for i in (0, 2, 4, 8, 10, 12)
            )
            x0_, m0_, nt_, ncb_, ldcb_, w0_, a0_, accf = (args[i] for i in (1, 3, 5, 6, 7, 9, 11, 13))
            i64, vf = ir.IntType(64), ir.VectorType(ir.FloatType(), 8)
            fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vf, [vf] * 3), "llvm.fma.v8f32")

            def entry(ptr, i):  # ptr[m0 + i], an int64
                return builder.load(builder.gep(ptr, [builder.add(m0_, ir.Constant(i64, i))]))

            pos = [builder.add(x0_, entry(p_p, i)) for i in range(nw)]
            dst = [
                [
                    builder.bitcast(
                        builder.gep(c_p, [builder.add(builder.add(entry(ap_p, i), a0_), ir.Constant(i64, 8 * v))]),
                        vf.as_pointer(),
                    )
                    for v in range(2)
                ]
                for i in range(nw)
            ]
            acc = _accumulators(builder, vf, nw, dst, accf)
            wcur = cgutils.alloca_once_value(builder, w0_)
            with cgutils.for_range(builder, nt_) as tap:
                to = builder.load(builder.gep(t_p, [tap.index]))
                with cgutils.for_range(builder, ncb_) as blk:
                    off = builder.add(to, builder.mul(blk.index, ldcb_))
                    wb = builder.load(wcur)
                    _channel_block(builder, fma, acc, x_p, [builder.add(p, off) for p in pos], w_p, wb)
                    builder.store(builder.add(wb, ir.Constant(i64, CB * KB)), wcur)
            for i in range(nw):
                for v in range(2):
                    builder.store(builder.load(acc[i][v]), dst[i][v], align=4)
            return context.get_dummy_value()

        return sig, codegen

    return tile


_tiles = [_make_tile(n) for n in range(1, NW + 1)]
_tile1, _tile2, _tile3, _tile4, _tile5, _tile6 = _tiles


@numba.njit(cache=True, inline="always")
def _tile(nw, x, x0, pos, m0, toff, ntaps, ncb, ldcb, w, w0, acc, a0, apos, accumulate):
    """_make_tile(nw) for 1 <= nw <= NW: each size is its own unrolled kernel."""
    if nw == 6:
        _tile6(x, x0, pos, m0, toff, ntaps, ncb, ldcb, w, w0, acc, a0, apos, accumulate)
    elif nw == 5:
        _tile5(x, x0, pos, m0, toff, ntaps, ncb, ldcb, w, w0, acc, a0, apos, accumulate)
    elif nw == 4:
        _tile4(x, x0, pos, m0, toff, ntaps, ncb, ldcb, w, w0, acc, a0, apos, accumulate)
    elif nw == 3:
        _tile3(x, x0, pos, m0, toff, ntaps, ncb, ldcb, w, w0, acc, a0, apos, accumulate)
    elif nw == 2:
        _tile2(x, x0, pos, m0, toff, ntaps, ncb, ldcb, w, w0, acc, a0, apos, accumulate)
    else:
        _tile1(x, x0, pos, m0, toff, ntaps, ncb, ldcb, w, w0, acc, a0, apos, accumulate)


@numba.njit(cache=True)
def _fill_phase(xf, C, H, W, sw, rows, cols, x_row, x_col, dst, ph_cols, xb):
    """For i < rows, j < cols and every channel c: xb[dst[c//8] + (i*ph_cols + j)*8 + c%8] =
    x[c, x_row[i], x_col + j*sw] (one phase of fill). A whole block of 8 channels at unit column stride goes 8
    columns a step through an 8x8 register transpose; the rest element by element (flat unsigned indices)."""
    eight, step = np.uint64(CB), np.uint64(sw)
    for c0 in range(0, C, CB):
        n = min(CB, C - c0)
        for i in range(rows):
            d_row = dst[c0 // CB] + i * ph_cols * CB
            s_row = (c0 * H + x_row[i]) * W + x_col
            j0 = 0
            if n == CB and sw == 1:
                for j0 in range(0, cols - CB + 1, CB):
                    transpose8(xf, s_row + j0, H * W, xb, d_row + j0 * CB, CB)
                j0 = cols // CB * CB
            for cc in range(n):
                d0 = np.uint64(d_row + j0 * CB + cc)
                s0 = np.uint64(s_row + cc * H * W + j0 * sw)
                for j in range(np.uint64(cols - j0)):
                    xb[d0 + j * eight] = xf[s0 + j * step]


@numba.njit(cache=True)
def fill(xn, sh, sw, ph, pw, ph_rows, ph_cols, xb):
    """xb (Cp/8, sh, sw, Hph, Wph, 8) flat; xb[c//8, a, b, i, j, c%8] = x[c, i*sh + a - ph, j*sw + b - pw].

    Writes only the entries that come from x: the padding (and the pad channels) sit at the same places for every
    image, so the caller zeroes xb once per thread and it stays zero."""
    C, H, W = xn.shape
    xf = xn.reshape(C * H * W)
    plane = ph_rows * ph_cols
    dst = np.empty((C + CB - 1) // CB, np.int64)
    for a in range(sh):
        i_lo, i_hi = phase_span(ph_rows, H, ph, sh, a)
        x_row = np.arange(i_lo, i_hi) * sh + a - ph
        for b in range(sw):
            j_lo, j_hi = phase_span(ph_cols, W, pw, sw, b)
            for k in range(dst.size):
                dst[k] = (((k * sh + a) * sw + b) * plane + i_lo * ph_cols + j_lo) * CB
            _fill_phase(xf, C, H, W, sw, i_hi - i_lo, j_hi - j_lo, x_row, j_lo * sw + b - pw, dst, ph_cols, xb)


@numba.njit(cache=True)
def _tap_offsets(R, S, sh, sw, dh, dw, plane, ph_cols):
    """toff (R*S,): where in xb tap (r, s) of output (0, 0) reads, relative to the start of a channel block."""
    toff = np.empty(R * S, np.int64)
    for r in range(R):
        for s in range(S):
            a, ri = (r * dh) % sh, (r * dh) // sh
            b, si = (s * dw) % sw, (s * dw) // sw
            toff[r * S + s] = ((a * sw + b) * plane + ri * ph_cols + si) * CB
    return toff


@numba.njit(cache=True)
def _positions(p0, tp, Q, ph_cols, Kp, pos, apos):
    """pos[m], apos[m] for the m-th output position of rows p0..p0+tp (m = i*Q + q): where its 8-channel runs
    start in xb's phase planes, and its row in acc (tp*Q, Kp)."""
    for m in range(tp * Q):
        pos[m] = ((p0 + m // Q) * ph_cols + m % Q) * CB
        apos[m] = m * Kp


@numba.njit(cache=True)
def tile_sums(xb, toff, wp, ncb, ldcb, chunk, pos, apos, npos, acc):
    """acc[apos[m] + k] = the conv sums of positions m < npos; xb holds ncb 8-channel blocks ldcb apart (module
    docstring: loop order). Blocks of NW positions run on across output rows: no garbage columns, and one short
    block a tile."""
    nkb = wp.shape[0]
    for c0 in range(0, ncb, chunk):
        nc = min(chunk, ncb - c0)
        for kb in range(nkb):
            wf = wp[kb]
            for m0 in range(0, npos, NW):
                nw = min(NW, npos - m0)
                _tile(
                    nw,
                    xb,
                    c0 * ldcb,
                    pos,
                    m0,
                    toff,
                    toff.size,
                    nc,
                    ldcb,
                    wf,
                    c0 * toff.size * CB * KB,
                    acc,
                    kb * KB,
                    apos,
                    c0,
                )


@numba.njit(cache=True)
def prefetch_rows(on, p0, tp):
    """Prefetch for writing the lines of on (K, P, Q) rows p0..p0+tp, which the tile's copy-out writes after its
    multiply-adds: the misses then overlap them."""
    K, P, Q = on.shape
    of = on.reshape(K * P * Q)
    run = tp * Q
    for k in range(K):
        d0 = (k * P + p0) * Q
        for j in range(0, run + 15, 16):  # one element per 64-byte line, and the run's last one
            prefetch_write(of, d0 + min(j, run - 1))


@numba.njit(cache=True)
def store(acc, Kp, bias, p0, tp, on):
    """on[:, p0:p0+tp, :] (K, tp, Q) = acc (tp*Q, Kp) transposed, plus bias. Rows p0.. of a channel are one run of
    tp*Q floats in on, as the positions are in acc: 16x16 blocks over that run, the last moved back to overlap."""
    K, P, Q = on.shape
    of, run = on.reshape(K * P * Q), tp * Q
    if K < KB or run < KB:
        for k in range(K):
            for m in range(run):
                of[k * P * Q + p0 * Q + m] = acc[m * Kp + k] + bias[k]
        return
    for mb in range(0, run, KB):
        m0 = min(mb, run - KB)
        for kb in range(0, K, KB):
            k0 = min(kb, K - KB)
            transpose16_add(acc, m0 * Kp + k0, Kp, of, k0 * P * Q + p0 * Q + m0, P * Q, bias, k0)


@numba.njit(parallel=True, cache=True, nogil=True)  # nogil: see numba_matmul._matmul
def _conv2d_kernel(x, wp, bias, sh, sw, ph, pw, dh, dw, R, S, chunk, tile_rows, nthreads, out):
    """x (N, C, H, W), wp (Kp/16, Cp*R*S*16) from pack_weights, bias (K,), out (N, K, P, Q)."""
    N, C = x.shape[0], x.shape[1]
    P, Q = out.shape[2], out.shape[3]
    ph_rows, ph_cols = P + ((R - 1) * dh) // sh, Q + ((S - 1) * dw) // sw
    plane = ph_rows * ph_cols
    ldcb = sh * sw * plane * CB  # distance between channel blocks in xb
    toff = _tap_offsets(R, S, sh, sw, dh, dw, plane, ph_cols)
    tiles = (P + tile_rows - 1) // tile_rows
    ntasks = N * tiles
    for t in prange(nthreads):
        xb = np.zeros((C + CB - 1) // CB * ldcb, np.float32)
        acc = np.empty(tile_rows * Q * wp.shape[0] * KB, np.float32)
        pos, apos = np.empty(tile_rows * Q, np.int64), np.empty(tile_rows * Q, np.int64)
        last_n = -1
        for task in range(t * ntasks // nthreads, (t + 1) * ntasks // nthreads):
            n, p0 = task // tiles, (task % tiles) * tile_rows
            if n != last_n:
                fill(x[n], sh, sw, ph, pw, ph_rows, ph_cols, xb)
                last_n = n
            tp = min(tile_rows, P - p0)
            prefetch_rows(out[n], p0, tp)
            _positions(p0, tp, Q, ph_cols, wp.shape[0] * KB, pos, apos)
            tile_sums(xb, toff, wp, (C + CB - 1) // CB, ldcb, chunk, pos, apos, tp * Q, acc)
            store(acc, wp.shape[0] * KB, bias, p0, tp, out[n])


@numba.njit(parallel=True, cache=True)
def _pack(w, taps, chunk, wp, w0):
    """wp[kb, w0:] = w (K, C, R, S) (any strides) at taps (ntaps, 2) of (r, s), in pack_weights' order; the pad
    channels zero. Per 16 output channels and input channel, the ntaps*16 values read lie together in w[c, k]
    order (a transposed convolution's weights) or 16 runs of R*S (a convolution's)."""
    K, C = w.shape[0], w.shape[1]
    nt, ncb = taps.shape[0], (C + CB - 1) // CB
    for kb in prange(wp.shape[0]):
        for c0 in range(0, ncb, chunk):
            nc = min(chunk, ncb - c0)
            for b in range(nc):
                for j in range(CB):
                    c = (c0 + b) * CB + j
                    for t in range(nt):
                        d = w0 + c0 * nt * CB * KB + ((t * nc + b) * CB + j) * KB
                        for kk in range(KB):
                            k = kb * KB + kk
                            ok = k < K and c < C
                            wp[kb, d + kk] = w[min(k, K - 1), min(c, C - 1), taps[t, 0], taps[t, 1]] if ok else 0.0


def chunk_blocks(ntaps: int) -> int:
    """8-channel blocks a weight chunk: ntaps*8*16 floats a block, W_CHUNK_BYTES a chunk."""
    return max(1, W_CHUNK_BYTES // max(1, ntaps * CB * KB * 4))


def pack_weights(w: np.ndarray, taps: np.ndarray, wp: np.ndarray, w0: int) -> int:
    """Packs w (K, C, R, S), any strides, at taps (ntaps, 2) into wp (Kp/16, ...) from column w0: per 16-channel
    block the c-chunks one after another, each (ntaps, blocks of the chunk, 8, 16). Returns the chunk
    (chunk_blocks). A block takes Cp*ntaps*16 columns."""
    chunk = chunk_blocks(taps.shape[0])
    _pack(w, taps, chunk, wp, w0)
    return chunk


def all_taps(R: int, S: int) -> np.ndarray:
    return np.array([(r, s) for r in range(R) for s in range(S)], np.int64).reshape(R * S, 2)


def exact_for_int8(C: int, R: int, S: int) -> bool:
    """Whether int8 inputs and weights convolve exactly here: every partial sum is an integer of magnitude at most
    C*R*S * 128*128, and float32 holds every integer up to 2^24."""
    return C * R * S * 128 * 128 <= 2**24


def conv2d(x, w, bias, stride, padding, dilation, out):
    """x (N, C, H, W) float32 or int8 (widened as it is laid out), w (K, C, R, S) and bias (K,) float32, out
    (N, K, P, Q) float32; C-contiguous."""
    K, C, R, S = w.shape
    N, P, Q = x.shape[0], out.shape[2], out.shape[3]
    wp = np.empty((-(-K // KB), -(-C // CB) * CB * R * S * KB), np.float32)
    chunk = pack_weights(w, all_taps(R, S), wp, 0)
    nthreads = numba.get_num_threads()
    # rows a tile: acc within TILE_BYTES, and at least one tile per thread
    tile_rows = max(1, min(TILE_BYTES // (Q * wp.shape[0] * KB * 4), -(-P // -(-nthreads // N))))
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    _conv2d_kernel(x, wp, bias, sh, sw, ph, pw, dh, dw, R, S, chunk, tile_rows, nthreads, out)


@numba.njit(nogil=True)
def _probe(x, pos, toff, w, acc, apos):  # one NW-position tile, outside any loop: what tile_asm() disassembles
    _tile6(x, 0, pos, 0, toff, toff.size, 1, 0, w, 0, acc, 0, apos, 0)


def tile_asm() -> str:
    """The machine code of the NW-position microkernel as compiled for this CPU."""
    args = (np.zeros(NW * CB, np.float32), np.arange(NW, dtype=np.int64) * CB, np.zeros(1, np.int64))
    _probe(*args, np.zeros(CB * KB, np.float32), np.zeros(NW * KB, np.float32), np.arange(NW, dtype=np.int64) * KB)
    return "".join(_probe.inspect_asm().values())
