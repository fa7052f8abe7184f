"""matmul for the opencl backend: pack both operands into panels, then a register-blocked GEMM (matmul.cl).

Gemm is the building block the conv launchers reuse (batched, any operand strides). tuned() picks the
tile (TM, VW, NV) per device by timing a few candidates on a 512^3 GEMM once, and remembers it on disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hetero import opencl_util as ocl

SOURCE = Path(__file__).with_name("matmul.cl")
# (rows TM) x (VW * NV columns) per work-item; PoCL on AVX2 likes 8 x 8 and 6 x 16 (REFERENCES.md machine).
CANDIDATES = (dict(TM=8, VW=8, NV=1), dict(TM=6, VW=8, NV=2), dict(TM=6, VW=16, NV=1), dict(TM=4, VW=8, NV=3))
TUNE_SHAPE = (512, 512, 512)
PACK_KC = 64  # k's a packing work-item moves (pack_f32 in matmul.cl)


@dataclass
class Operand:
    """A rows x K matrix in a buffer: element (r, k) of batch b at b*s_batch + r*s_row + k*s_k (floats)."""

    buf: object
    rows: int
    s_row: int
    s_k: int
    s_batch: int = 0  # 0: the same matrix for every batch (conv weights)


class Gemm:
    """C[b] (M, N) = A[b] (M, K) @ B[b] (K, N) for b < batch; A given as rows=M, B as rows=N (its columns)."""

    def __init__(self, rt: ocl.Runtime, M: int, N: int, K: int, batch: int = 1, config: dict | None = None):
        self.rt, self.M, self.N, self.K, self.batch = rt, M, N, K, batch
        self.cfg = config or tuned(rt)
        self.TM, self.TN = self.cfg["TM"], self.cfg["VW"] * self.cfg["NV"]
        self.Mt, self.Nt = -(-M // self.TM), -(-N // self.TN)
        self.prg = rt.program(SOURCE, {**self.cfg, "PACK_KC": PACK_KC})
        self.ap = rt.buffer(nbytes=batch * self.Mt * self.TM * K * 4)
        self.bp = rt.buffer(nbytes=batch * self.Nt * self.TN * K * 4)

    def _pack(self, op: Operand, dst, T: int, tiles: int):
        batch = self.batch if op.s_batch else 1
        return ocl.launch(
            self.rt,
            self.prg.pack_f32,
            (tiles, -(-self.K // PACK_KC), batch),
            None,
            op.buf,
            dst,
            np.int32(op.rows),
            np.int32(self.K),
            np.int32(T),
            np.int64(op.s_batch),
            np.int64(op.s_row),
            np.int64(op.s_k),
            np.int64(tiles * T * self.K),
        )

    def pack_a(self, a: Operand):
        return self._pack(a, self.ap, self.TM, self.Mt)

    def pack_b(self, b: Operand):
        return self._pack(b, self.bp, self.TN, self.Nt)

    def multiply(self, a_batched: bool, b_batched: bool, c_buf, ldc: int, s_c: int):
        """The GEMM on already packed panels (self.ap, self.bp); returns its event."""
        sa = self.Mt * self.TM * self.K if a_batched else 0
        sb = self.Nt * self.TN * self.K if b_batched else 0
        return ocl.launch(
            self.rt,
            self.prg.matmul_f32,
            (self.Mt, self.Nt, self.batch),
            (1, 1, 1),
            self.ap,
            self.bp,
            c_buf,
            np.int32(self.M),
            np.int32(self.N),
            np.int32(self.K),
            np.int32(ldc),
            np.int64(sa),
            np.int64(sb),
            np.int64(s_c),
        )

    def enqueue(self, a: Operand, b: Operand, c_buf, ldc: int, s_c: int) -> list:
        """Pack A and B, multiply into c_buf (row stride ldc, batch stride s_c); returns the three events."""
        return [self.pack_a(a), self.pack_b(b), self.multiply(bool(a.s_batch), bool(b.s_batch), c_buf, ldc, s_c)]


def _time_config(rt: ocl.Runtime, cfg: dict, reps: int = 3) -> float:
    M, N, K = TUNE_SHAPE
    rng = np.random.default_rng(0)
    a = rt.buffer(rng.standard_normal((M, K), np.float32))
    b = rt.buffer(rng.standard_normal((K, N), np.float32))
    c = rt.buffer(nbytes=M * N * 4)
    g = Gemm(rt, M, N, K, config=cfg)
    run = lambda: ocl.event_seconds(g.enqueue(Operand(a, M, K, 1), Operand(b, N, 1, N), c, N, 0))  # noqa: E731
    run()
    return min(run() for _ in range(reps))


def tuned(rt: ocl.Runtime, path=None) -> dict:
    """The best candidate for this device, from the tuning file or by timing every candidate (then saved)."""
    key = f"{ocl.device_key(rt.device)}|matmul_f32|v1"
    saved = ocl.load_tuning(path).get(key)
    if isinstance(saved, dict) and saved.get("config") in [dict(c) for c in CANDIDATES]:
        return saved["config"]
    times = {i: _time_config(rt, dict(c)) for i, c in enumerate(CANDIDATES)}
    best = dict(CANDIDATES[min(times, key=times.get)])
    gflops = {
        f"TM{c['TM']}_VW{c['VW']}_NV{c['NV']}": round(2 * np.prod(TUNE_SHAPE) / times[i] / 1e9, 1)
        for i, c in enumerate(CANDIDATES)
    }
    ocl.save_tuning(key, {"config": best, "gflops": gflops, "shape": list(TUNE_SHAPE)}, path)
    return best


def prepare(rt: ocl.Runtime, case, inputs: dict):
    """(enqueue, out_buf, out_shape) for C = a @ b."""
    p = case.p
    M, N, K, nb = p["M"], p["N"], p["K"], p.get("batch", 1)
    a, b = rt.buffer(inputs["a"]), rt.buffer(inputs["b"])  # (batch, M, K), (batch, K, N); batch 1: 2-D
    c = rt.buffer(nbytes=nb * M * N * 4)
    g = Gemm(rt, M, N, K, batch=nb)
    sa, sb, sc = (M * K, K * N, M * N) if nb > 1 else (0, 0, 0)
    shape = (nb, M, N) if nb > 1 else (M, N)
    return (lambda: g.enqueue(Operand(a, M, K, 1, sa), Operand(b, N, 1, N, sb), c, N, sc)), c, shape
