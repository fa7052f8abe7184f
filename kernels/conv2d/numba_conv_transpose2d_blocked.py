"""Dense float32 conv_transpose2d on AVX2 CPUs: the stride phases of the output as convolutions, each run by
numba_conv2d_blocked's FMA microkernel. No BLAS, no col2im scatter.

Output row oh = h*sh - ph + r*dh gets tap r from input row h. For the output rows of phase a (oh = a + sh*i)
those are the taps r with (a + ph - r*dh) % sh == 0, each reading input row h = i + e_r, e_r = (a + ph - r*dh)/sh:
a plain (stride-1) correlation of x with the phase's taps at row offsets e_r; the same for columns. Per phase
(a, b), then: a conv over input positions (i + e_r, j + f_s), its own taps and packed weights, its outputs landing
at (a + sh*i, b + sw*j).

Layouts: xb (Cp/8, Hpad, Wpad, 8) per image, x with T rows and L columns of zeros before it (so e_r + T >= 0)
and enough after for the last phase row (numba_conv2d_blocked.fill with stride 1). A tile is phase rows
i0..i0+tp of every phase, i.e. output rows sh*i0.. sh*(i0+tp), all Wo columns: acc (rows*Wo, Kp) in output order,
which the phases fill interleaved (apos) and numba_conv2d_blocked.store copies out with the bias.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from hetero.kernels.conv2d import numba_conv2d_blocked as blocked
from hetero.kernels.conv2d.numba_conv2d_blocked import CB, KB, fill, pack_weights, prefetch_rows, store, tile_sums


def _phase_taps(R, stride, pad, dil, a):
    """[(r, e_r)]: the taps of output phase a along one axis and the input offset each reads at."""
    return [(r, (a + pad - r * dil) // stride) for r in range(R) if (a + pad - r * dil) % stride == 0]


@numba.njit(cache=True)
def _phase_positions(a, b, i0, tp, sh, sw, Ho, Wo, Wpad, Kp, x0, a0, pos, apos, m):
    """Appends at pos[m], apos[m] phase (a, b)'s outputs in phase rows i0..i0+tp of the image whose xb starts at
    x0 and acc at a0 (numba_conv2d_blocked._make_tile): input position (i, j), acc row (a + sh*(i - i0))*Wo +
    b + sw*j. Returns the new count."""
    Pa, Qb = (Ho - a + sh - 1) // sh, (Wo - b + sw - 1) // sw
    for i in range(i0, min(i0 + tp, Pa)):
        for j in range(Qb):
            pos[m] = x0 + (i * Wpad + j) * CB
            apos[m] = a0 + ((a + sh * (i - i0)) * Wo + b + sw * j) * Kp
            m += 1
    return m


@numba.njit(cache=True)
def _tile(xb, img, ldcb, ncb, wp, wofs, toff, tofs, chunks, i0, tp, sh, sw, Ho, Wo, Wpad, pos, apos, acc):
    """acc = the sums of phase rows i0..i0+tp of img images, whose xb lie one after another: per phase, the
    positions of all of them in one run (more positions a weight chunk when images are small)."""
    Kp = wp.shape[0] * KB
    for f in range(sh * sw):
        m = 0
        for g in range(img):
            m = _phase_positions(
                f // sw, f % sw, i0, tp, sh, sw, Ho, Wo, Wpad, Kp, g * ncb * ldcb, g * tp * sh * Wo * Kp, pos, apos, m
            )
        taps, wf = toff[tofs[f] : tofs[f + 1]], wp[:, wofs[f] : wofs[f + 1]]
        tile_sums(xb, taps, wf, ncb, ldcb, chunks[f], pos, apos, m, acc)


@numba.njit(parallel=True, cache=True, nogil=True)  # nogil: see numba_matmul._matmul
def _kernel(x, wp, wofs, toff, tofs, chunks, bias, sh, sw, T, L, Hpad, Wpad, tile_rows, group, nthreads, out):
    """x (N, C, H, W); per phase f = a*sw + b: weights wp[:, wofs[f]:wofs[f+1]], taps toff[tofs[f]:tofs[f+1]],
    chunk chunks[f]; out (N, K, Ho, Wo). A task: tile_rows phase rows of `group` images (group > 1 only when a
    tile is a whole image)."""
    N, C = x.shape[0], x.shape[1]
    Ho, Wo = out.shape[2], out.shape[3]
    Kp, ncb, ldcb = wp.shape[0] * KB, (C + CB - 1) // CB, Hpad * Wpad * CB
    rows_i = (Ho + sh - 1) // sh  # phase rows of phase 0, the most
    tiles, groups = (rows_i + tile_rows - 1) // tile_rows, (N + group - 1) // group
    ntasks = groups * tiles
    for t in prange(nthreads):
        xb = np.zeros(group * ncb * ldcb, np.float32)
        acc = np.empty(group * tile_rows * sh * Wo * Kp, np.float32)
        pos = np.empty(group * tile_rows * ((Wo + sw - 1) // sw), np.int64)
        apos = np.empty_like(pos)
        last_n0 = -1
        for task in range(t * ntasks // nthreads, (t + 1) * ntasks // nthreads):
            n0, i0 = (task // tiles) * group, (task % tiles) * tile_rows
            img = min(group, N - n0)
            if n0 != last_n0:
                for g in range(img):
                    fill(x[n0 + g], 1, 1, T, L, Hpad, Wpad, xb[g * ncb * ldcb :])
                last_n0 = n0
            tp = min(tile_rows, rows_i - i0)
            rows = min(sh * tp, Ho - sh * i0)
            for g in range(img):
                prefetch_rows(out[n0 + g], sh * i0, rows)
            _tile(xb, img, ldcb, ncb, wp, wofs, toff, tofs, chunks, i0, tp, sh, sw, Ho, Wo, Wpad, pos, apos, acc)
            for g in range(img):
                store(acc[g * tp * sh * Wo * Kp :], Kp, bias, sh * i0, rows, out[n0 + g])


def _geometry(x_hw, out_hw, R, S, stride, padding, dilation):
    """Per axis and phase the taps, and the padding T, L and padded size Hpad, Wpad of xb."""
    taps, pads, sizes = [], [], []
    for n_in, n_out, k, st, pd, dl in zip(x_hw, out_hw, (R, S), stride, padding, dilation):
        per_phase = [_phase_taps(k, st, pd, dl, a) for a in range(st)]
        offs = [e for ph in per_phase for _, e in ph] or [0]
        before = max(0, -min(offs))
        last = max([(n_out - a + st - 1) // st - 1 + e for a, ph in enumerate(per_phase) for _, e in ph] or [0])
        taps.append(per_phase)
        pads.append(before)
        sizes.append(before + max(n_in, last + 1))
    return taps, pads, sizes


def _tiling(N, rows, row_bytes, nthreads):
    """(phase rows a tile, images a tile): acc (row_bytes a phase row) within TILE_BYTES and a task per thread at
    least; several whole images a tile when one is smaller than that."""
    per_image = rows * row_bytes
    if per_image <= blocked.TILE_BYTES and N >= 2 * nthreads:
        return rows, max(1, min(blocked.TILE_BYTES // per_image, N // nthreads))
    return max(1, min(blocked.TILE_BYTES // row_bytes, -(-rows // -(-nthreads // N)))), 1


def conv_transpose2d(x, w, bias, stride, padding, dilation, out):
    """x (N, C, H, W), w (C, K, R, S), bias (K,) float32, out (N, K, Ho, Wo); float32 C-contiguous."""
    C, K, R, S = w.shape
    (sh, sw), N = stride, x.shape[0]
    (rows, cols), (T, L), (Hpad, Wpad) = _geometry(x.shape[2:], out.shape[2:], R, S, stride, padding, dilation)
    wk = w.transpose(1, 0, 2, 3)  # (K, C, R, S), strided
    phases = [(a, b) for a in range(sh) for b in range(sw)]
    taps = [np.array([(r, s) for r, _ in rows[a] for s, _ in cols[b]], np.int64).reshape(-1, 2) for a, b in phases]
    toff = [[((er + T) * Wpad + es + L) * CB for _, er in rows[a] for _, es in cols[b]] for a, b in phases]
    tofs = np.cumsum([0] + [len(t) for t in toff]).astype(np.int64)
    wofs = np.cumsum([0] + [t.shape[0] * -(-C // CB) * CB * KB for t in taps]).astype(np.int64)
    wp = np.empty((-(-K // KB), wofs[-1]), np.float32)
    chunks = np.array([pack_weights(wk, t, wp, w0) for t, w0 in zip(taps, wofs)], np.int64)
    toff = np.array([o for t in toff for o in t], np.int64)
    nthreads, Kp, Wo = numba.get_num_threads(), wp.shape[0] * KB, out.shape[3]
    rows_i = -(-out.shape[2] // sh)
    tile_rows, group = _tiling(N, rows_i, sh * Wo * Kp * 4, nthreads)
    args = (wp, wofs, toff, tofs, chunks, bias, sh, sw, T, L, Hpad, Wpad, tile_rows, group, nthreads)
    _kernel(x, *args, out)
