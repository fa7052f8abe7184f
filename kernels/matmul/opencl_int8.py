"""int8 matmul for the opencl backend: pack A (M, K) and B^T (N, K) into rows of Kp = K rounded up to 16, then
matmul_int8.cl's char16 dot products into int32, exact. The operands come quantized (workloads.quant).
Gemm8 is also conv2d's int8 GEMM (kernels/conv2d/opencl_conv2d.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hetero import opencl_util as ocl

SOURCE = Path(__file__).with_name("matmul_int8.cl")
TM, TN = 4, 4  # outputs per work-item: TM rows x TN columns, 4 + 4 char16 loads for 16 dot products


class Gemm8:
    """C[b] (M, N) int32 = A[b] (M, K) @ B[b] (K, N), int8, b < batch. Operands are given as (buffer, rows,
    strides (batch, row, k)): A by its M rows, B by its N columns; a batch stride 0 is one matrix for all."""

    def __init__(self, rt: ocl.Runtime, M: int, N: int, K: int, batch: int = 1):
        self.rt, self.M, self.N, self.K, self.batch = rt, M, N, K, batch
        self.Kp = -(-K // 16) * 16
        self.prg = rt.program(SOURCE, dict(TM=TM, TN=TN))
        self.ap, self.bp = rt.buffer(nbytes=batch * M * self.Kp), rt.buffer(nbytes=batch * N * self.Kp)

    def _pack(self, src, rows: int, strides: tuple, dst):
        nb = self.batch if strides[0] else 1
        args = (np.int32(rows), np.int32(self.K), np.int32(self.Kp), *(np.int64(s) for s in strides))
        return ocl.launch(self.rt, self.prg.pack_i8, (rows, self.Kp, nb), None, src, dst, *args)

    def enqueue(self, a, a_strides: tuple, b, b_strides: tuple, c) -> list:
        """Pack both, multiply into c (batch, M, N) int32; returns the three events."""
        M, N, Kp = self.M, self.N, self.Kp
        sa, sb = (M * Kp if a_strides[0] else 0), (N * Kp if b_strides[0] else 0)
        return [
            self._pack(a, M, a_strides, self.ap),
            self._pack(b, N, b_strides, self.bp),
            ocl.launch(
                self.rt,
                self.prg.matmul_i8,
                (-(-M // TM), -(-N // TN), self.batch),
                None,
                self.ap,
                self.bp,
                c,
                np.int32(M),
                np.int32(N),
                np.int32(Kp),
                np.int64(sa),
                np.int64(sb),
            ),
        ]


def prepare(rt: ocl.Runtime, case, inputs: dict):
    """(enqueue, out_buf, out_shape) for C (batch, M, N) int32 = a (batch, M, K) @ b (batch, K, N), int8."""
    p = case.p
    M, N, K, nb = p["M"], p["N"], p["K"], p.get("batch", 1)
    a, b = rt.buffer(inputs["a"]), rt.buffer(inputs["b"])
    c = rt.buffer(nbytes=nb * M * N * 4)
    g = Gemm8(rt, M, N, K, nb)
    a_st, b_st = (M * K if nb > 1 else 0, K, 1), (K * N if nb > 1 else 0, 1, N)
    return (lambda: g.enqueue(a, a_st, b, b_st, c)), c, ((nb, M, N) if nb > 1 else (M, N))
