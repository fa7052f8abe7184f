"""conv2d / conv_transpose2d for fpga-emu, lowered onto the systolic array: im2col then W @ cols per image;
transposed: cols = W^T @ x per image, then col2im (kernels in conv2d.cl). int8 (the int8 presets' arrays):
im2col_i8's cols (N, P*Q, C*R*S) read as B with strides, int32 out. groups > 1 runs as the dense
convolution with block-diagonal weights (opencl_conv2d.dense_weight), and the model times that dense work."""

from __future__ import annotations

import numpy as np

from hetero import fpga_model as fm
from hetero import opencl_util as ocl
from hetero.kernels.conv2d.opencl_conv2d import SOURCE, defines, dense_weight, with_bias
from hetero.kernels.matmul.fpga_matmul import Systolic
from hetero.workloads import get


def prepare(rt, pr: fm.FpgaPreset, case, inputs):
    """(enqueue, out_buf, out_shape, estimate); a bias is one more pass over the output (opencl_conv2d.with_bias)."""
    enqueue, out, shape, estimate = _prepare(rt, pr, case, inputs)
    return with_bias(rt, case, enqueue, out, shape, inputs.get("bias")), out, shape, estimate


def _prepare(rt, pr: fm.FpgaPreset, case, inputs):
    p = case.p
    N, C, H, W, K, R, S = (p[d] for d in "NCHWKRS")
    wl = get(case.workload)
    shape = wl.out_shape(p)
    x = rt.buffer(inputs["input"])
    w = rt.buffer(dense_weight(inputs["weight"], p.get("groups", 1), case.workload == "conv_transpose2d"))
    out = rt.buffer(nbytes=int(np.prod(shape)) * 4)
    int8 = case.dtype == "int8"
    prg, sys = rt.program(SOURCE, defines(p)), Systolic(rt, pr, int8=int8)
    i32 = np.int32
    if case.workload == "conv2d" and int8:  # cols (N, P*Q, C*R*S) int8, read by the array as B (C*R*S, P*Q)
        P, Q = wl.out_hw(p)
        crs = C * R * S
        cols = rt.buffer(nbytes=N * P * Q * crs)

        def enqueue():
            e1 = ocl.launch(rt, prg.im2col_i8, (crs, P * Q, N), None, x, cols, i32(C), i32(H), i32(W), i32(P), i32(Q))
            return [e1, sys.enqueue(w, (crs, 1, 0), cols, (1, crs, crs * P * Q), out, K, P * Q, crs, N)]

        return enqueue, out, shape, fm.conv2d(pr, p, P, Q)
    if case.workload == "conv2d":
        P, Q = wl.out_hw(p)
        crs = C * R * S
        cols = rt.buffer(nbytes=N * crs * P * Q * 4)  # (N, C*R*S, P*Q)

        def enqueue():
            e1 = ocl.launch(rt, prg.im2col_f32, (P * Q, crs, N), None, x, cols, i32(C), i32(H), i32(W), i32(P), i32(Q))
            return [e1, sys.enqueue(w, (crs, 1, 0), cols, (P * Q, 1, crs * P * Q), out, K, P * Q, crs, N)]

        return enqueue, out, shape, fm.conv2d(pr, p, P, Q)
    Ho, Wo = wl.out_hw(p)
    krs = K * R * S
    cols = rt.buffer(nbytes=N * krs * H * W * 4)  # (N, K*R*S, H*W)

    def enqueue():  # W (C, K*R*S) read transposed: (m=krs, k=c) at c*krs + m
        e1 = sys.enqueue(w, (1, krs, 0), x, (H * W, 1, C * H * W), cols, krs, H * W, C, N)
        return [
            e1,
            ocl.launch(rt, prg.col2im_f32, (Ho * Wo, K, N), None, cols, out, i32(K), i32(H), i32(W), i32(Ho), i32(Wo)),
        ]

    return enqueue, out, shape, fm.conv_transpose2d(pr, p, Ho, Wo)
