"""int8 GEMM for the numba backend: C (M, N) int32 = A (M, K) int8 @ B (K, N) int8, exact (int32 accumulation).

Our own kernel, no library. On CPUs with AVX-512 VNNI (Zen 4, Ice Lake and later) the inner product is VPDPBUSD,
which multiplies 4 unsigned bytes by 4 signed bytes and adds the 4 products into each of 16 int32 lanes: 64
multiply-adds per instruction. A is signed, so it is offset to unsigned (a + 128, a XOR 0x80) and the excess is
taken off once per column: sum_k (a + 128) * b = a @ b + 128 * colsum(B).

Layout (packed once per call):
  Ap (Mp/MR, Kp/4, MR, 4) uint8: A + 128 in panels of MR rows, M padded to a multiple of MR and K of 4 (the pad
     128 is a zero of A); each (panel, k4) row holds the 4 bytes of each of the MR rows that one step broadcasts
  Bp (Np/NB, Kp/4, NB, 4) int8: panels of NB = 16*NR columns; each (k4, panel) row is NR zmm of 4 bytes per lane
     (int8_pack.pack_b, shared with the AMX kernel)
  C is computed into Cp (Mp, Np) and the valid (M, N) copied out.
  Both are packed a 4-byte word at a time (one lane's bytes), the edges byte by byte: a narrow GEMM (N = 128)
  does only N multiply-adds per byte of A packed, so packing must run near memory speed.
On CPUs with AMX-INT8 (Sapphire Rapids and later Xeons), gemm runs numba_amx's tile kernel instead.
Microkernel (_tile, in LLVM IR): an MR x NB tile of C in MR*NR zmm accumulators, over all of K: per 4 values of
k, NR loads of Bp, MR 4-byte broadcasts of Ap, MR*NR VPDPBUSD. Threads take column panels (prange), each panel
(Kp*NB bytes) staying in the core's L1/L2 while row tiles stream past it.
AVX2 without VNNI (_gemm_avx2): VPMADDWD on int16 pairs (signed, so no offset): A widened to int16 rows Aw
(Mp, Kp), read in place (a step broadcasts 4 bytes, two k, of each of MR16 = 6 rows), B packed as Bp
(Np/16, Kp/2, 16) uint32 words of two int16; a 6 x 16 tile in 12 ymm accumulators, per step 2 loads of Bp, 6
broadcasts, 12 VPMADDWD and 12 VPADDD (the adds, which AVX2 has no fused form for, set the pace). Threads take
runs of row tiles; each tile's rows stay in L1 while a chunk of column panels (B_CHUNK_BYTES of Bp, in L2) passes.
A is not packed into panels: that is a strided scatter, slow next to the few multiply-adds a narrow GEMM
(N = 128) does per byte of A, where widening runs at memory speed.
Elsewhere, _gemm_plain's int32 loops are left to LLVM.
"""

from __future__ import annotations

import llvmlite.binding as llvm
import numba
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from hetero.kernels.matmul import numba_amx
from hetero.kernels.matmul.int8_pack import NB as PACKED_NB
from hetero.kernels.matmul.int8_pack import edge_word, pack_b, word
from hetero.kernels.numba_intrinsics import array_data

VNNI = bool(llvm.get_host_cpu_features().get("avx512vnni", False))
AVX2 = bool(llvm.get_host_cpu_features().get("avx2", False))
# LLVM 21 retyped the VNNI intrinsics' byte operands from <16 x i32> to <64 x i8>.
_BYTE_OPERANDS = llvm.llvm_version_info >= (21,)


# Per ISA: lanes (int32 per vector), MR x NR vectors of accumulators, k per lane per step, the LLVM intrinsic.
# Either way a step reads 4 bytes of each of A's MR rows and NR*lanes*4 bytes of B: the packing shares one shape.
ISAS = {
    "vnni": dict(lanes=16, MR=8, NR=2, k_step=4, name="llvm.x86.avx512.vpdpbusd.512"),  # u8 x s8, 16 zmm acc
    "avx2": dict(lanes=8, MR=6, NR=2, k_step=2, name="llvm.x86.avx2.pmadd.wd"),  # s16 x s16 pairs, 12 ymm acc
}


def _store(builder, acc, c_p, c0, ldc, r_p, n0):
    """The tile's epilogue: c[c0 + i*ldc + j*lanes ...] = acc[i][j] - corr[n0 + j*lanes ...], a vector each; with
    r_p None (no offset to take off: AVX2's signed pairs) c = acc."""
    i64, vacc = ir.IntType(64), acc[0][0].type.pointee
    for i, row in enumerate(acc):
        for j, slot in enumerate(row):
            val = builder.load(slot)
            if r_p is not None:
                rv = builder.gep(r_p, [builder.add(n0, ir.Constant(i64, vacc.count * j))])
                val = builder.sub(val, builder.load(builder.bitcast(rv, vacc.as_pointer()), align=4))
            at = builder.add(c0, builder.add(builder.mul(ldc, ir.Constant(i64, i)), ir.Constant(i64, vacc.count * j)))
            builder.store(val, builder.bitcast(builder.gep(c_p, [at]), vacc.as_pointer()), align=4)


def _make_tile(isa: str):
    """The microkernel for `isa` (ISAS) as a Numba intrinsic:
    cp[c0 + i*ldc + j] = sum_k A[i, k] * B[k, j] - corr[n0 + j] for i < MR, j < NR*lanes, over `steps` steps
    (AVX2: no corr term, A being signed; corr is not read).

    ap: flat bytes, step k's 4 bytes of row i at a0 + i*lda + k*astep (a packed panel: lda 4, astep 4*MR; rows
    read in place: lda the row's bytes, astep 4); bp: the flat column panel from byte b0, rows of NR*lanes*4
    bytes; cp, corr: flat int32. Constant strides at the call site are folded into the loop when it is inlined."""
    cfg = ISAS[isa]
    L, mr, nr = cfg["lanes"], cfg["MR"], cfg["NR"]

    @intrinsic
    def tile(typingctx, ap, a0, lda, astep, bp, b0, steps, cp, c0, ldc, corr, n0):
        sig = types.void(ap, a0, lda, astep, bp, b0, steps, cp, c0, ldc, corr, n0)

        def codegen(context, builder, sig, args):
            a_p, b_p, c_p, r_p = (array_data(context, builder, sig.args[i], args[i]) for i in (0, 4, 7, 10))
            a_p, b_p = (builder.bitcast(x, ir.IntType(8).as_pointer()) for x in (a_p, b_p))
            a0_, lda_, astep_, b0_, steps_, c0_, ldc_, n0_ = (args[i] for i in (1, 2, 3, 5, 6, 8, 9, 11))
            i32, i64 = ir.IntType(32), ir.IntType(64)
            vacc = ir.VectorType(i32, L)
            opv = ir.VectorType(ir.IntType(8 if isa == "vnni" else 16), 4 * L // (1 if isa == "vnni" else 2))
            if isa == "vnni" and not _BYTE_OPERANDS:
                opv = vacc
            fn = cgutils.get_or_insert_function(
                builder.module,
                ir.FunctionType(vacc, [vacc, opv, opv] if isa == "vnni" else [opv, opv]),
                cfg["name"],
            )
            acc = [[cgutils.alloca_once(builder, vacc) for _ in range(nr)] for _ in range(mr)]
            for slot in (s for row in acc for s in row):
                builder.store(ir.Constant(vacc, [0] * L), slot)
            with cgutils.for_range(builder, steps_) as loop:
                k = loop.index
                base = builder.add(b0_, builder.mul(k, ir.Constant(i64, nr * L * 4)))
                bv = []
                for j in range(nr):
                    ptr = builder.gep(b_p, [builder.add(base, ir.Constant(i64, 4 * L * j))])
                    bv.append(builder.bitcast(builder.load(builder.bitcast(ptr, vacc.as_pointer()), align=1), opv))
                for i in range(mr):
                    at = builder.add(a0_, builder.add(builder.mul(k, astep_), builder.mul(lda_, ir.Constant(i64, i))))
                    word = builder.load(builder.bitcast(builder.gep(a_p, [at]), i32.as_pointer()), align=1)
                    one = builder.insert_element(ir.Constant(vacc, None), word, ir.Constant(i32, 0))
                    av = builder.bitcast(
                        builder.shuffle_vector(one, ir.Constant(vacc, None), ir.Constant(vacc, [0] * L)), opv
                    )
                    for j in range(nr):
                        old = builder.load(acc[i][j])
                        new = (
                            builder.call(fn, [old, av, bv[j]])
                            if isa == "vnni"
                            else builder.add(old, builder.call(fn, [av, bv[j]]))
                        )
                        builder.store(new, acc[i][j])
            _store(builder, acc, c_p, c0_, ldc_, r_p if isa == "vnni" else None, n0_)
            return context.get_dummy_value()

        return sig, codegen

    return tile


_tile = _make_tile("vnni")
_tile16 = _make_tile("avx2")
MR, NB = ISAS["vnni"]["MR"], ISAS["vnni"]["NR"] * ISAS["vnni"]["lanes"]
assert NB == PACKED_NB, "the VNNI tile reads int8_pack's panels whole"
MR16, NB16 = ISAS["avx2"]["MR"], ISAS["avx2"]["NR"] * ISAS["avx2"]["lanes"]
B_CHUNK_BYTES = 256 * 1024  # AVX2: the column panels of Bp one pass over the row tiles takes, within half an L2


_U32 = np.uint32
_FLIP = np.uint32(0x80808080)  # XOR of four bytes with 0x80: signed -> offset unsigned (a + 128)


@numba.njit(cache=True, nogil=True, parallel=True)
def _pack_a(a, Mp, Kp):
    """Ap (Mp/MR, Kp/4, MR) uint32 words of A + 128 (the module docstring's layout, four bytes a word).
    Full panels are packed a whole word at a time; the edges (rows past M, bytes past K) byte by byte, a
    missing byte being A's zero, 128."""
    M, K = a.shape
    au = a.view(np.uint8)
    ap = np.empty((Mp // MR, Kp // 4, MR), np.uint32)
    for ip in prange(Mp // MR):
        for i in range(MR):
            m = ip * MR + i
            if m >= M:
                ap[ip, :, i] = _FLIP
                continue
            row = au[m]
            for k4 in range(K // 4):
                k = 4 * k4
                ap[ip, k4, i] = word(row[k], row[k + 1], row[k + 2], row[k + 3]) ^ _FLIP
            if K % 4:
                ap[ip, K // 4, i] = edge_word(au, m, K - K % 4, 0, M, K) ^ _FLIP
    return ap


@numba.njit(cache=True, nogil=True)
def _corr(b, Np):
    """corr (Np,) int32 = 128 * colsum(B): what A's offset adds to each column of C. A row at a time: contiguous,
    vectorized."""
    K, N = b.shape
    corr = np.zeros(Np, np.int32)
    for k in range(K):
        for n in range(N):
            corr[n] += np.int32(b[k, n])
    corr *= 128  # in place: stays int32, as the microkernel reads it
    return corr


@numba.njit(cache=True, nogil=True, parallel=True)
def _gemm_vnni(a, b, out):  # a (M, K) int8, b (K, N) int8, out (M, N) int32
    M, K = a.shape
    N = b.shape[1]
    Mp, Kp, Np = -(-M // MR) * MR, -(-K // 4) * 4, -(-N // NB) * NB
    ap, bp, corr = _pack_a(a, Mp, Kp), pack_b(b, Np, Kp), _corr(b, Np)
    cp = out if (Mp == M and Np == N) else np.empty((Mp, Np), np.int32)
    af, bf, cf = ap.reshape(-1).view(np.uint8), bp.reshape(-1).view(np.int8), cp.reshape(-1)
    kq = Kp // 4
    for jp in prange(Np // NB):
        for i0 in range(0, Mp, MR):
            _tile(af, i0 * Kp, 4, 4 * MR, bf, jp * kq * NB * 4, kq, cf, i0 * Np + jp * NB, Np, corr, jp * NB)
    if cp.shape[0] != M or cp.shape[1] != N:
        out[:, :] = cp[:M, :N]


@numba.njit(cache=True, nogil=True, inline="always")
def _pair(lo, hi):
    """Two int8 values as the two int16 halves of one uint32 word (lo in the low half): one lane of VPMADDWD."""
    return (_U32(np.int32(lo)) & _U32(0xFFFF)) | (_U32(np.int32(hi)) << _U32(16))


@numba.njit(cache=True, nogil=True, inline="always")
def _widen16(a, aw, i):
    """Row i of Aw (Mp, Kp) int16: A's row widened, 0 past A's last row and column."""
    M, K = a.shape
    if i >= M:
        aw[i, :] = 0
        return
    for k in range(K):
        aw[i, k] = a[i, k]
    aw[i, K:] = 0


@numba.njit(cache=True, nogil=True, inline="always")
def _pack16_b(b, bp, jp):
    """Panel jp of Bp (Np/NB16, Kp/2, NB16): words of two int16 from two row slices of B; past its end 0."""
    K, N = b.shape
    n0 = jp * NB16
    w = min(NB16, N - n0)
    bp[jp, :, w:] = 0
    for k2 in range(K // 2):
        r0, r1, dst = b[2 * k2, n0 : n0 + w], b[2 * k2 + 1, n0 : n0 + w], bp[jp, k2]
        for j in range(w):
            dst[j] = _pair(r0[j], r1[j])
    if K % 2:
        for j in range(w):
            bp[jp, K // 2, j] = _pair(b[K - 1, n0 + j], 0)


@numba.njit(cache=True, nogil=True, inline="always")
def _rows16(aw, bp, cp, t0, t1):
    """Row tiles t0 .. t1 (MR16 rows each) of Cp (Mp, Np) = Aw @ Bp. Column panels go in chunks whose share of Bp
    (B_CHUNK_BYTES) stays in L2 while the row tiles pass it, each tile's rows of Aw staying in L1 for the chunk."""
    Np = cp.shape[1]
    Kp = 2 * bp.shape[1]
    npan, lda = Np // NB16, 2 * aw.shape[1]  # lda: bytes
    chunk = max(1, B_CHUNK_BYTES // (Kp * NB16 * 2))
    af, bf, cf = aw.reshape(-1), bp.reshape(-1).view(np.int16), cp.reshape(-1)
    unread = np.zeros(1, np.int32)  # the tile's corr argument, which the AVX2 tile does not read
    for j0 in range(0, npan, chunk):
        for t in range(t0, t1):
            i0 = t * MR16
            for jp in range(j0, min(npan, j0 + chunk)):
                b0, c0 = jp * Kp * NB16 * 2, i0 * Np + jp * NB16
                _tile16(af, i0 * lda, lda, 4, bf, b0, Kp // 2, cf, c0, Np, unread, 0)


@numba.njit(cache=True, nogil=True, parallel=True)
def _gemm_avx2(a, b, out, nthreads):  # a (M, K) int8, b (K, N) int8, out (M, N) int32: VPMADDWD on int16 pairs
    M, K = a.shape
    N = b.shape[1]
    Mp, Kp, Np = -(-M // MR16) * MR16, -(-K // 2) * 2, -(-N // NB16) * NB16
    aw = np.empty((Mp, Kp), np.int16)
    bp = np.empty((Np // NB16, Kp // 2, NB16), np.uint32)
    for i in prange(Mp):
        _widen16(a, aw, i)
    for jp in prange(Np // NB16):
        _pack16_b(b, bp, jp)
    cp = out if (Mp == M and Np == N) else np.empty((Mp, Np), np.int32)
    tiles = Mp // MR16
    for t in prange(nthreads):  # a thread takes a run of row tiles, every column panel
        _rows16(aw, bp, cp, t * tiles // nthreads, (t + 1) * tiles // nthreads)
    if cp.shape[0] != M or cp.shape[1] != N:
        out[:, :] = cp[:M, :N]


@numba.njit(cache=True, nogil=True, parallel=True)
def _gemm_avx2_batched(a, b, out):  # a (batch, M, K), b (batch, K, N) int8, out (batch, M, N) int32
    """A batch item a task, each packed and multiplied on one thread: a small product (BERT's 512 x 512 x 64
    scores) split over threads spends more on packing and joining than on multiply-adds."""
    M, K = a.shape[1], a.shape[2]
    N = b.shape[2]
    Mp, Kp, Np = -(-M // MR16) * MR16, -(-K // 2) * 2, -(-N // NB16) * NB16
    for t in prange(a.shape[0]):
        aw = np.empty((Mp, Kp), np.int16)
        bp = np.empty((Np // NB16, Kp // 2, NB16), np.uint32)
        for i in range(Mp):
            _widen16(a[t], aw, i)
        for jp in range(Np // NB16):
            _pack16_b(b[t], bp, jp)
        cp = out[t] if (Mp == M and Np == N) else np.empty((Mp, Np), np.int32)
        _rows16(aw, bp, cp, 0, Mp // MR16)
        if Mp != M or Np != N:
            out[t] = cp[:M, :N]


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


# The int8 kernels this CPU can run, best first.
HAVE = {"amx": numba_amx.AMX, "vnni": VNNI, "avx2": AVX2, "plain": True}
BEST = next(isa for isa, ok in HAVE.items() if ok)


def gemm(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out (M, N) int32 = a (M, K) int8 @ b (K, N) int8, all C-contiguous."""
    gemm_on(BEST, a, b, out)


def gemm_on(isa: str, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """gemm on one ISA's kernel ("amx", "vnni", "avx2" or "plain"), which this CPU must have (HAVE)."""
    if isa == "avx2":
        _gemm_avx2(a, b, out, numba.get_num_threads())
    else:
        {"amx": numba_amx.gemm, "vnni": _gemm_vnni, "plain": _gemm_plain}[isa](a, b, out)


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """a (M, K) @ b (K, N), or batched: a (batch, M, K) @ b (batch, K, N); int8 in, int32 out."""
    if a.ndim == 2:
        gemm(a, b, out)
        return
    if BEST == "amx":
        numba_amx.gemm_batched(a, b, out)
        return
    if BEST == "avx2":
        _gemm_avx2_batched(a, b, out)
        return
    for i in range(a.shape[0]):
        gemm(a[i], b[i], out[i])


def warmup() -> None:
    a = np.ones((9, 5), np.int8)
    matmul(a, np.ascontiguousarray(a.T), np.empty((9, 9), np.int32))


@numba.njit(nogil=True)
def _probe_vnni(ap, bp, corr, cp):  # one tile, outside prange: what tile_asm() disassembles
    _tile(ap, 0, 4, 4 * MR, bp, 0, 1, cp, 0, NB, corr, 0)


@numba.njit(nogil=True)
def _probe_avx2(ap, bp, corr, cp):
    _tile16(ap, 0, 4, 4 * MR16, bp, 0, 1, cp, 0, NB16, corr, 0)


def tile_asm(isa: str = "vnni") -> str:
    """The machine code of `isa`'s microkernel as compiled for this CPU (which must have the ISA)."""
    probe = {"vnni": _probe_vnni, "avx2": _probe_avx2}[isa]
    ap, bp = np.zeros(4 * 8, np.uint8), np.zeros(4 * 32, np.int8)
    probe(ap, bp, np.zeros(32, np.int32), np.zeros(8 * 32, np.int32))
    return "".join(probe.inspect_asm().values())
