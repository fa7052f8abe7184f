"""The fpga-emu GEMM: fpga_systolic.cl's R x C x V systolic array (the preset's shape) on any OpenCL device,
plus matmul's launcher. int8: the operands come quantized (workloads.quant), the PEs multiply-add into int32 and
C is the int32 accumulators, exact; dequantizing is the caller's."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hetero import fpga_model as fm
from hetero import opencl_util as ocl

SOURCE = Path(__file__).with_name("fpga_systolic.cl")


class Systolic:
    """C[b] (M, N) = scale * A[b] @ B[b]; A given by (s_row, s_k), B by (s_k, s_col), any transposes free."""

    def __init__(self, rt: ocl.Runtime, pr: fm.FpgaPreset, int8: bool = False):
        self.rt, self.pr = rt, pr
        types = dict(TYPE="char", ACC="int", INT_OUT=1) if int8 else dict(TYPE="float", ACC="float", INT_OUT=0)
        self.prg = rt.program(SOURCE, dict(R=pr.R, C=pr.C, V=pr.V, **types))

    def enqueue(self, a, a_strides, b, b_strides, c, M, N, K, batch=1, ldc=None, s_c=None, scale=1.0):
        (sam, sak, sa), (sbk, sbn, sb) = a_strides, b_strides
        ldc = N if ldc is None else ldc
        s_c = M * ldc if s_c is None else s_c
        g = (-(-M // self.pr.R), -(-N // self.pr.C), batch)
        # One PE array per work-group: PoCL otherwise packs many work-items, each with its R x C x V
        # register file on the worker thread's stack, into one group and overflows it (segfault at 512^3).
        return ocl.launch(
            self.rt,
            self.prg.systolic_gemm,
            g,
            (1, 1, 1),
            a,
            b,
            c,
            np.int32(M),
            np.int32(N),
            np.int32(K),
            *(np.int64(x) for x in (sam, sak, sbk, sbn, sa, sb)),
            np.int32(ldc),
            np.int64(s_c),
            np.float32(scale),
        )


def prepare(rt, pr: fm.FpgaPreset, case, inputs):
    """(enqueue, out_buf, out_shape, estimate) for C = a @ b."""
    p = case.p
    M, N, K, nb = p["M"], p["N"], p["K"], p.get("batch", 1)
    a, b = inputs["a"], inputs["b"]  # (batch, M, K), (batch, K, N); batch 1: 2-D; int8 or float32
    abuf, bbuf, c = rt.buffer(a), rt.buffer(b), rt.buffer(nbytes=nb * M * N * 4)
    sys = Systolic(rt, pr, int8=case.dtype == "int8")
    a_st, b_st = (K, 1, M * K if nb > 1 else 0), (N, 1, K * N if nb > 1 else 0)
    enqueue = lambda: [sys.enqueue(abuf, a_st, bbuf, b_st, c, M, N, K, nb)]  # noqa: E731
    return enqueue, c, ((nb, M, N) if nb > 1 else (M, N)), fm.gemm(pr, M, N, K, nb)
