"""conv2d and conv_transpose2d for the opencl backend, lowered onto the tuned GEMM (kernels/matmul/matmul.cl).

conv2d: im2col written straight into the GEMM's packed-B panels (pack_im2col_f32), weights (K, C*R*S) as A.
conv_transpose2d: cols_n (K*R*S, H*W) = W^T @ x_n by the GEMM, then col2im_f32 gathers each output pixel.
A bias is added by one more pass over the output (add_bias_f32), after the convolution, which writes it whole.
conv2d with groups > 1 and at most DIRECT_MAX_CG input channels a group (depthwise, ResNeXt) is a direct
convolution (direct_grouped_f32); other grouped convs run as the dense convolution with block-diagonal weights
(dense_weight): exact, at groups times the multiply-adds of a grouped kernel, and timed as such.
int8 conv2d: im2col_i8 writes cols_n (P*Q, C*R*S), one row per output pixel, which is the int8 GEMM's B^T.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hetero import opencl_util as ocl
from hetero.kernels.matmul.opencl_int8 import Gemm8
from hetero.kernels.matmul.opencl_matmul import Gemm, Operand
from hetero.workloads import get
from hetero.workloads.conv2d import hw

SOURCE = Path(__file__).with_name("conv2d.cl")
DIRECT_MAX_CG = 16  # input channels a group up to which grouped conv2d is direct, not a block-diagonal GEMM


def defines(p: dict) -> dict:
    (sh, sw), (ph, pw), (dh, dw) = (hw(p, k) for k in ("stride", "padding", "dilation"))
    return dict(R=p["R"], S=p["S"], ST_H=sh, ST_W=sw, PAD_H=ph, PAD_W=pw, DIL_H=dh, DIL_W=dw)


def dense_weight(w: np.ndarray, groups: int, transposed: bool) -> np.ndarray:
    """A grouped weight as the dense one it equals: conv2d (K, C/g, R, S) -> (K, C, R, S), conv_transpose2d
    (C, K/g, R, S) -> (C, K, R, S), zero outside each group's diagonal block."""
    if groups == 1:
        return w
    rows, cols = w.shape[0] // groups, w.shape[1]  # per group: output (or input) channels x the other
    dense = np.zeros((w.shape[0], cols * groups) + w.shape[2:], w.dtype)
    for g in range(groups):
        dense[g * rows : (g + 1) * rows, g * cols : (g + 1) * cols] = w[g * rows : (g + 1) * rows]
    return dense


def _conv2d(rt, case, x, w, out):
    p = case.p
    N, C, H, W, K = (p[d] for d in "NCHWK")
    P, Q = get(case.workload).out_hw(p)
    kd = C * p["R"] * p["S"]
    prg = rt.program(SOURCE, defines(p))
    g = Gemm(rt, K, P * Q, kd, batch=N)
    d_batch = g.Nt * g.TN * kd

    def enqueue():
        ea = g.pack_a(Operand(w, K, kd, 1))
        eb = ocl.launch(
            rt,
            prg.pack_im2col_f32,
            (g.Nt, C, N),
            None,
            x,
            g.bp,
            np.int32(C),
            np.int32(H),
            np.int32(W),
            np.int32(P),
            np.int32(Q),
            np.int32(g.TN),
            np.int64(d_batch),
        )
        return [ea, eb, g.multiply(a_batched=False, b_batched=True, c_buf=out, ldc=P * Q, s_c=K * P * Q)]

    return enqueue


def _direct_grouped(rt, case, x, w, out):
    p = case.p
    N, C, H, W, K = (p[d] for d in "NCHWK")
    P, Q = get(case.workload).out_hw(p)
    prg = rt.program(SOURCE, defines(p) | dict(CG=C // p["groups"], KG=K // p["groups"]))
    sizes = (np.int32(C), np.int32(H), np.int32(W), np.int32(K), np.int32(P), np.int32(Q))
    return lambda: [ocl.launch(rt, prg.direct_grouped_f32, (Q, P, N * K), None, x, w, out, *sizes)]


def _conv_transpose2d(rt, case, x, w, out):
    p = case.p
    N, C, H, W, K = (p[d] for d in "NCHWK")
    Ho, Wo = get(case.workload).out_hw(p)
    krs = K * p["R"] * p["S"]
    prg = rt.program(SOURCE, defines(p))
    g = Gemm(rt, krs, H * W, C, batch=N)
    cols = rt.buffer(nbytes=N * krs * H * W * 4)

    def enqueue():
        events = g.enqueue(Operand(w, krs, 1, krs), Operand(x, H * W, 1, H * W, C * H * W), cols, H * W, krs * H * W)
        events.append(
            ocl.launch(
                rt,
                prg.col2im_f32,
                (Ho * Wo, K, N),
                None,
                cols,
                out,
                np.int32(K),
                np.int32(H),
                np.int32(W),
                np.int32(Ho),
                np.int32(Wo),
            )
        )
        return events

    return enqueue


def _conv2d_int8(rt, case, x, w, out):
    """int8: cols_n (P*Q, C*R*S) = im2col_i8(x_n), then out_n (K, P*Q) int32 = W (K, C*R*S) @ cols_n^T (Gemm8)."""
    p = case.p
    N, C, H, W, K = (p[d] for d in "NCHWK")
    P, Q = get(case.workload).out_hw(p)
    crs, i32 = C * p["R"] * p["S"], np.int32
    prg, g = rt.program(SOURCE, defines(p)), Gemm8(rt, K, P * Q, crs, batch=N)
    cols = rt.buffer(nbytes=N * P * Q * crs)

    def enqueue():
        e = ocl.launch(rt, prg.im2col_i8, (crs, P * Q, N), None, x, cols, i32(C), i32(H), i32(W), i32(P), i32(Q))
        return [e] + g.enqueue(w, (0, crs, 1), cols, (P * Q * crs, crs, 1), out)

    return enqueue


def with_bias(rt: ocl.Runtime, case, enqueue, out, shape: tuple, bias):
    """`enqueue`, followed (when bias is given) by out (N, K, P*Q) += bias (K,); returns the new enqueue."""
    if bias is None:
        return enqueue
    N, K = shape[:2]
    pq = int(np.prod(shape[2:]))
    prg, b = rt.program(SOURCE, defines(case.p)), rt.buffer(np.ascontiguousarray(bias, np.float32))
    return lambda: enqueue() + [ocl.launch(rt, prg.add_bias_f32, (pq, K, N), None, out, b, np.int32(K), np.int32(pq))]


def prepare(rt: ocl.Runtime, case, inputs: dict):
    shape = get(case.workload).out_shape(case.p)
    groups = case.p.get("groups", 1)
    int8 = case.dtype == "int8"
    direct = not int8 and case.workload == "conv2d" and groups > 1 and case.p["C"] // groups <= DIRECT_MAX_CG
    x = rt.buffer(inputs["input"])
    wt = inputs["weight"] if direct else dense_weight(inputs["weight"], groups, case.workload == "conv_transpose2d")
    w = rt.buffer(np.ascontiguousarray(wt, np.int8 if int8 else np.float32))
    out = rt.buffer(nbytes=int(np.prod(shape)) * 4)
    if int8:  # the int32 accumulators; the bias is added after dequantizing (workloads.quant)
        return _conv2d_int8(rt, case, x, w, out), out, shape
    make = _direct_grouped if direct else _conv2d if case.workload == "conv2d" else _conv_transpose2d
    return with_bias(rt, case, make(rt, case, x, w, out), out, shape, inputs.get("bias")), out, shape
