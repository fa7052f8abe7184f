"""int8 GEMM on Intel AMX tiles for the numba backend: C (M, N) int32 = A (M, K) int8 @ B (K, N) int8, exact.

AMX (Sapphire Rapids and later Xeons) adds eight tile registers of up to 16 rows x 64 bytes and TDPBSSD, which
multiplies a 16 x 64 int8 tile of A by a 64 x 16 int8 tile of B (stored as 16 rows of 16 columns x 4 bytes: four
consecutive k of one column side by side, the layout of int8_pack's panels, which VNNI reads too) into a 16 x 16 int32
tile of C: 16384 signed multiply-adds per instruction, against VPDPBUSD's 64. Both operands are signed, so A needs
no offset and C no correction.

Tiles here: 0-3 a 32 x 32 block of C (2 x 2 tiles of 16 x 16 int32), 4-5 the block's two 16-row slices of A
(16 x 64 bytes each), 6-7 the two 16-column halves of a 64-k slice of the B panel. A step over 64 values of k is
4 tile loads and 4 TDPBSSD.
Layout:
  A read in place at stride K, whole 64-byte tile rows even where K is not a multiple of 64 (_in_place says why
     that is exact); the last, partial block of rows through a zero-padded copy of its 32 rows.
  Bp (Np/32, Kp/4, 32) uint32: int8_pack's panel layout, K padded to a multiple of 64 with zeros.
  C: 32 x 32 blocks stored straight into out (when N is a multiple of 32), or into Cp (M, Np) and the valid
     columns copied out.
Each 32-row block of C is a parallel task; its rows of A (32 x K bytes) stay in L1/L2 while every column panel of
Bp passes.

Linux gives a process the 8 KiB of tile state only on request (arch_prctl ARCH_REQ_XCOMP_PERM); without it the
first tile instruction is an illegal instruction. Importing this module asks; AMX is True only if the CPU has
AMX-INT8 and the kernel said yes.
"""

from __future__ import annotations

import ctypes
import sys

import llvmlite.binding as llvm
import numba
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from hetero.kernels.matmul.int8_pack import pack_b, pack_b_serial
from hetero.kernels.numba_intrinsics import array_data

BM, BN, KB = 32, 32, 64  # a block of C: 32 rows, 32 columns; k per step
_SYS_ARCH_PRCTL, _ARCH_REQ_XCOMP_PERM, _XFEATURE_XTILEDATA = 158, 0x1023, 18


def _request_tiles() -> bool:
    """Ask Linux for this process's AMX tile state; False off Linux or if refused."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.syscall(_SYS_ARCH_PRCTL, _ARCH_REQ_XCOMP_PERM, _XFEATURE_XTILEDATA) == 0
    except (OSError, AttributeError):
        return False


_FEATURES = llvm.get_host_cpu_features()
AMX = bool(_FEATURES.get("amx-int8") and _FEATURES.get("amx-tile")) and _request_tiles()


def _tile_config() -> np.ndarray:
    """The 64-byte LDTILECFG operand: palette 1, tiles 0-7 each 16 rows x 64 bytes."""
    cfg = np.zeros(64, np.uint8)
    cfg[0] = 1  # palette 1
    for t in range(8):
        cfg[16 + 2 * t] = 64  # bytes per row (uint16, little-endian)
        cfg[48 + t] = 16  # rows
    return cfg


CONFIG = _tile_config()


def _tile_ops(builder):
    """The AMX intrinsics (immediate tile numbers) as callables on LLVM values."""
    mod, void, i8, i64 = builder.module, ir.VoidType(), ir.IntType(8), ir.IntType(64)
    i8p = i8.as_pointer()

    def fn(name, *args):
        f = cgutils.get_or_insert_function(mod, ir.FunctionType(void, list(args)), f"llvm.x86.{name}")
        return lambda *vals: builder.call(f, [ir.Constant(i8, v) if isinstance(v, int) else v for v in vals])

    return dict(
        config=fn("ldtilecfg", i8p),
        release=fn("tilerelease"),
        zero=fn("tilezero", i8),
        load=fn("tileloadd64", i8, i8p, i64),
        dot=fn("tdpbssd", i8, i8, i8),
        store=fn("tilestored64", i8, i8p, i64),
    )


@intrinsic
def _block_row(typingctx, cfg, ap, a0, lda, bp, steps, cp, c0, ldc, panels):
    """For each column panel j < panels of Bp: the 32 x 32 block of C at byte c0 + 128*j (row stride ldc bytes) =
    A's 32 rows from byte a0 (row stride lda bytes) @ panel j, over `steps` steps of 64 k. Loads the tile
    config on entry (it is per thread) and releases the tiles on exit."""
    sig = types.void(cfg, ap, a0, lda, bp, steps, cp, c0, ldc, panels)

    def codegen(context, builder, sig, args):
        i64, i8p = ir.IntType(64), ir.IntType(8).as_pointer()
        cfg_p, a_p, b_p, c_p = (
            builder.bitcast(array_data(context, builder, sig.args[i], args[i]), i8p) for i in (0, 1, 4, 6)
        )
        a0_, lda_, steps_, c0_, ldc_, panels_ = (args[i] for i in (2, 3, 5, 7, 8, 9))
        k64 = lambda x: ir.Constant(i64, x)  # noqa: E731
        op = _tile_ops(builder)
        op["config"](cfg_p)
        a1_ = builder.add(a0_, builder.mul(lda_, k64(16)))
        panel = builder.mul(steps_, k64(KB * BN))  # bytes of one Bp panel
        with cgutils.for_range(builder, panels_) as panel_loop:
            j = panel_loop.index
            for t in range(4):
                op["zero"](t)
            b0 = builder.mul(j, panel)
            with cgutils.for_range(builder, steps_) as loop:
                ka, kb = builder.mul(loop.index, k64(KB)), builder.mul(loop.index, k64(KB * BN))
                op["load"](4, builder.gep(a_p, [builder.add(a0_, ka)]), lda_)
                op["load"](5, builder.gep(a_p, [builder.add(a1_, ka)]), lda_)
                bk = builder.add(b0, kb)
                op["load"](6, builder.gep(b_p, [bk]), k64(4 * BN))
                op["load"](7, builder.gep(b_p, [builder.add(bk, k64(64))]), k64(4 * BN))
                for t, (x, y) in enumerate(((4, 6), (4, 7), (5, 6), (5, 7))):
                    op["dot"](t, x, y)
            c = builder.add(c0_, builder.mul(j, k64(4 * BN)))
            for t, (di, dj) in enumerate(((0, 0), (0, 64), (16, 0), (16, 64))):
                at = builder.add(c, builder.add(builder.mul(ldc_, k64(di)), k64(dj)))
                op["store"](t, builder.gep(c_p, [at]), ldc_)
        op["release"]()
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(cache=True, nogil=True, inline="always")
def _in_place(M, K):
    """How many 32-row blocks of A (M, K) tiles read in place. A tile row reads Kp bytes from a row's start, past
    its K into the next row's first bytes: harmless, as Bp's rows past K are zero, but past A's end for its last
    row; so when K is not a multiple of 64 the block holding the last row is copied, as is a partial last block."""
    return M // BM if (K % KB == 0 or M % BM) else M // BM - 1


@numba.njit(cache=True, nogil=True, inline="always")
def _block(a, bp, cp, cfg, r):
    """Rows r*32 .. r*32 + 31 of Cp (M, Np) = A (M, K) @ Bp, A's and Cp's rows read and written in place."""
    K, Np = a.shape[1], cp.shape[1]
    af, bf, cf = a.reshape(-1), bp.reshape(-1).view(np.int8), cp.reshape(-1).view(np.int8)
    _block_row(cfg, af, r * BM * K, K, bf, bp.shape[1] // (KB // 4), cf, r * BM * Np * 4, Np * 4, Np // BN)


@numba.njit(cache=True, nogil=True, inline="always")
def _tail(a, bp, cp, cfg, r0):
    """Rows r0*32 .. M-1 (at most 32) of Cp (M, Np) = A (M, K) @ Bp, through zero-padded copies of a block."""
    M, K = a.shape
    Kp, Np = 4 * bp.shape[1], cp.shape[1]
    rows = M - r0 * BM
    at, ct = np.zeros((BM, Kp), np.int8), np.empty((BM, Np), np.int32)
    at[:rows, :K] = a[r0 * BM :]
    _block(at, bp, ct, cfg, 0)
    cp[r0 * BM :] = ct[:rows]


@numba.njit(cache=True, nogil=True, parallel=True)
def _gemm(a, b, out, cfg):  # a (M, K) int8, b (K, N) int8, out (M, N) int32
    M, K = a.shape
    N = b.shape[1]
    Kp, Np = -(-K // KB) * KB, -(-N // BN) * BN
    bp = pack_b(b, Np, Kp)
    cp = out if Np == N else np.empty((M, Np), np.int32)
    n = _in_place(M, K)
    for r in prange(n):
        _block(a, bp, cp, cfg, r)
    if n * BM < M:
        _tail(a, bp, cp, cfg, n)
    if Np != N:
        out[:, :] = cp[:, :N]


@numba.njit(cache=True, nogil=True, parallel=True)
def _gemm_batched(a, b, out, cfg):  # a (batch, M, K), b (batch, K, N) int8, out (batch, M, N) int32
    """A batch item a thread's task: a small product (BERT's 512 x 512 x 64 scores) split over threads spends
    more on packing and joining than on multiply-adds."""
    M, K, N = a.shape[1], a.shape[2], b.shape[2]
    Kp, Np = -(-K // KB) * KB, -(-N // BN) * BN
    n = _in_place(M, K)
    for t in prange(a.shape[0]):
        bp = pack_b_serial(b[t], Np, Kp)
        cp = out[t] if Np == N else np.empty((M, Np), np.int32)
        for r in range(n):
            _block(a[t], bp, cp, cfg, r)
        if n * BM < M:
            _tail(a[t], bp, cp, cfg, n)
        if Np != N:
            out[t] = cp[:, :N]


def gemm(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out (M, N) int32 = a (M, K) int8 @ b (K, N) int8, all C-contiguous; AMX must be True."""
    _gemm(a, b, out, CONFIG)


def gemm_batched(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out (batch, M, N) int32 = a (batch, M, K) int8 @ b (batch, K, N) int8; AMX must be True."""
    _gemm_batched(a, b, out, CONFIG)


@numba.njit(nogil=True)
def _probe(cfg, ap, bp, cp):  # one block, outside prange: what tile_asm() disassembles
    _block_row(cfg, ap, 0, KB, bp, 1, cp, 0, 4 * BN, 1)


def tile_asm() -> str:
    """The machine code of the block kernel as compiled for this CPU (which must have AMX)."""
    _probe(CONFIG, np.zeros(BM * KB, np.int8), np.zeros(KB * BN, np.int8), np.zeros(BM * BN, np.int32))
    return "".join(_probe.inspect_asm().values())
