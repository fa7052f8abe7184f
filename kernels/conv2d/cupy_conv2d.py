"""conv2d and conv_transpose2d on the GPU: im2col / col2im RawKernels (cupy_conv2d.cu) around cuBLAS GEMMs.

CuPy 13+ no longer ships cuDNN bindings, so this is the implicit-GEMM family's simplest member: im2col writes
the (C*R*S, P*Q) patch matrix of each image, one strided-batched cuBLAS GEMM multiplies it by the weights.
The transposed convolution runs the GEMM first (weights^T @ input, fp32 columns) and gathers with col2im.

`gemm` is the row-major cuBLAS call shared with the cupy backend's matmul.
"""

from __future__ import annotations

from pathlib import Path

SOURCE = Path(__file__).with_name("cupy_conv2d.cu")
TUNING = {"CONV_THREADS": 256}
NAMES = ("im2col<float>", "im2col<unsigned short>")  # template kernels NVRTC instantiates by name
_MODULES: dict = {}
_CUDA_TYPE = {"float32": 0, "tf32": 0, "float16": 2, "bfloat16": 14}  # cudaDataType: R_32F, R_16F, R_16BF
_COMPUTE_32F, _COMPUTE_32F_FAST_TF32, _GEMM_DEFAULT = 68, 77, -1  # cublasComputeType_t, cublasGemmAlgo_t


def gemm(
    a,
    b,
    c,
    m: int,
    n: int,
    k: int,
    dtype: str,
    trans_a=False,
    trans_b=False,
    batch=1,
    stride_a=0,
    stride_b=0,
    stride_c=0,
    out_dtype: str | None = None,
) -> None:
    """Row-major c (m, n) = op(a) (m, k) @ op(b) (k, n), `batch` times with element strides, fp32 accumulation.

    cuBLAS is column-major, so this computes c^T = op(b)^T op(a)^T; op(x) = x^T when trans_x (x stored (k, m)).
    tf32 uses CUBLAS_COMPUTE_32F_FAST_TF32; float32 plain CUBLAS_COMPUTE_32F (no tensor-core rounding).
    """
    import numpy as np
    from cupy.cuda import cublas, device

    handle = device.get_cublas_handle()
    one, zero = np.ones(1, np.float32), np.zeros(1, np.float32)  # host scalars (pointer mode host)
    compute = _COMPUTE_32F_FAST_TF32 if dtype == "tf32" else _COMPUTE_32F
    t_in, t_out = _CUDA_TYPE[dtype], _CUDA_TYPE[out_dtype or dtype]
    cublas.gemmStridedBatchedEx(
        handle,
        int(trans_b),
        int(trans_a),
        n,
        m,
        k,
        one.ctypes.data,
        b.data.ptr,
        t_in,
        k if trans_b else n,
        stride_b,
        a.data.ptr,
        t_in,
        m if trans_a else k,
        stride_a,
        zero.ctypes.data,
        c.data.ptr,
        t_out,
        n,
        stride_c,
        batch,
        compute,
        _GEMM_DEFAULT,
    )


def module():
    import cupy as cp

    dev = cp.cuda.Device().id
    if dev not in _MODULES:
        defines = "".join(f"#define {k} {v}\n" for k, v in TUNING.items())
        _MODULES[dev] = cp.RawModule(code=defines + SOURCE.read_text(), options=("-std=c++17",), name_expressions=NAMES)
    return _MODULES[dev]


def _grid(per_image: int, images: int) -> tuple:
    """(blocks, images) x threads: the kernels' grid.y is the image (at most 65,535), grid.x its elements."""
    if images > 65535:
        raise ValueError(f"cupy conv kernels take at most 65535 images a call, got N={images}")
    if per_image >= 2**31:
        raise ValueError(f"cupy conv kernels index one image's output in 32 bits; {per_image} elements is too many")
    threads = TUNING["CONV_THREADS"]
    return (min(-(-per_image // threads), 65535 * 8), images), (threads,)


def prepare_conv2d(x, w, dtype: str, p: dict, out_hw: tuple[int, int]):
    """A callable computing conv2d of device arrays x (N, C, H, W) and w (K, C, R, S); result in `.out`."""
    import cupy as cp

    N, C, H, W = x.shape
    K, _, R, S = w.shape
    P, Q = out_hw
    crs, pq = C * R * S, P * Q
    fn = module().get_function("im2col<float>" if x.dtype == cp.float32 else "im2col<unsigned short>")
    col = cp.empty((N, crs, pq), x.dtype)
    out = cp.empty((N, K, P, Q), x.dtype)
    args = (x, col, *(cp.int32(v) for v in (C, H, W, R, S, P, Q, p["stride"], p["padding"], p["dilation"])))
    grid, block = _grid(C * pq, N)  # a thread per input-channel pixel of the output, writing R*S taps

    def run():
        fn(grid, block, args)
        # out[n] (K, PQ) = w (K, CRS) @ col[n] (CRS, PQ)
        gemm(w, col, out, K, pq, crs, dtype, batch=N, stride_b=crs * pq, stride_c=K * pq)

    run.out = out
    return run


def prepare_conv_transpose2d(x, w, dtype: str, p: dict, out_hw: tuple[int, int]):
    """conv_transpose2d of x (N, C, H, W) with w (C, K, R, S): fp32 columns, then col2im; result in `.out`."""
    import cupy as cp

    N, C, H, W = x.shape
    _, K, R, S = w.shape
    Ho, Wo = out_hw
    krs, hw = K * R * S, H * W
    fn = module().get_function("col2im_gather")
    cols = cp.empty((N, krs, hw), cp.float32)
    out = cp.empty((N, K, Ho, Wo), cp.float32)
    args = (cols, out, *(cp.int32(v) for v in (K, H, W, R, S, Ho, Wo, p["stride"], p["padding"], p["dilation"])))
    grid, block = _grid(K * Ho * Wo, N)

    def run():
        # cols[n] (KRS, HW) = w^T (KRS, C) @ x[n] (C, HW); w stored (C, KRS)
        gemm(
            w,
            x,
            cols,
            krs,
            hw,
            C,
            dtype,
            trans_a=True,
            batch=N,
            stride_b=C * hw,
            stride_c=krs * hw,
            out_dtype="float32",
        )
        fn(grid, block, args)

    run.out = out
    return run
