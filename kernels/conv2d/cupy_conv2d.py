"""conv_transpose2d on the GPU: cuBLAS GEMMs (weights^T @ input, fp32 columns, one a group) and the col2im
RawKernel of cupy_conv2d.cu, which gathers each output pixel's taps. CuPy 13+ no longer ships cuDNN bindings.
conv2d runs the implicit GEMMs of cupy_igemm.py (no im2col buffer); `geometry` gives both their trailing
arguments, and `gemm` is the row-major cuBLAS call shared with the cupy backend's matmul.
"""

from __future__ import annotations

from pathlib import Path

from hetero.kernels import cuda_source

SOURCE = Path(__file__).with_name("cupy_conv2d.cu")
TUNING = {"CONV_THREADS": 256}
NAMES = ()  # col2im_gather is extern "C": found by its own name
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
        _MODULES[dev] = cp.RawModule(
            code=cuda_source.defines(TUNING) + SOURCE.read_text(), options=("-std=c++17",), name_expressions=NAMES
        )
    return _MODULES[dev]


def _grid(per_image: int, images: int) -> tuple:
    """(blocks, images) x threads: the kernels' grid.y is the image (at most 65,535), grid.x its elements."""
    if images > 65535:
        raise ValueError(f"cupy conv kernels take at most 65535 images a call, got N={images}")
    if per_image >= 2**31:
        raise ValueError(f"cupy conv kernels index one image's output in 32 bits; {per_image} elements is too many")
    threads = TUNING["CONV_THREADS"]
    return (min(-(-per_image // threads), 65535 * 8), images), (threads,)


def geometry(p: dict) -> tuple[int, ...]:
    """(stride_h, stride_w, pad_h, pad_w, dil_h, dil_w): the kernels' trailing arguments (*_w = -1: as along H)."""
    both = [(p[n], p[n] if p.get(n + "_w", -1) == -1 else p[n + "_w"]) for n in ("stride", "padding", "dilation")]
    return tuple(v for pair in both for v in pair)


def conv_transpose2d_gemms(N: int, K: int, C: int, rs: int, hw: int, groups: int) -> list[dict]:
    """The GEMMs before col2im, one a group, in elements: cols[n, group g's K/G*RS rows] (K/G*RS, HW) =
    w[g]^T (K/G*RS, C/G) @ x[n, group g's C/G channels] (C/G, HW), w stored (C, K/G*RS), batched over images."""
    cg, krs = C // groups, K // groups * rs
    return [
        dict(m=krs, n=hw, k=cg, a=g * cg * krs, b=g * cg * hw, c=g * krs * hw, stride_b=C * hw, stride_c=K * rs * hw)
        for g in range(groups)
    ]


def _run_gemms(a, b, c, calls: list[dict], dtype: str, batch: int, **kw) -> None:
    """Each planned GEMM on flat views of a, b, c at its element offsets (cuBLAS reads from the view's pointer)."""
    fa, fb, fc = a.reshape(-1), b.reshape(-1), c.reshape(-1)
    for g in calls:
        gemm(
            fa[g["a"] :],
            fb[g["b"] :],
            fc[g["c"] :],
            g["m"],
            g["n"],
            g["k"],
            dtype,
            batch=batch,
            stride_b=g["stride_b"],
            stride_c=g["stride_c"],
            **kw,
        )


def prepare_conv_transpose2d(x, w, dtype: str, p: dict, out_hw: tuple[int, int]):
    """conv_transpose2d of x (N, C, H, W) with w (C, K/groups, R, S): fp32 columns, then col2im; result in
    `.out`."""
    import cupy as cp

    N, C, H, W = x.shape
    _, kg, R, S = w.shape
    K = kg * p.get("groups", 1)
    Ho, Wo = out_hw
    hw = H * W
    fn = module().get_function("col2im_gather")
    cols = cp.empty((N, K * R * S, hw), cp.float32)
    out = cp.empty((N, K, Ho, Wo), cp.float32)
    args = (cols, out, *(cp.int32(v) for v in (K, H, W, R, S, Ho, Wo, *geometry(p))))
    grid, block = _grid(K * Ho * Wo, N)
    calls = conv_transpose2d_gemms(N, K, C, R * S, hw, p.get("groups", 1))

    def run():
        _run_gemms(w, x, cols, calls, dtype, N, trans_a=True, out_dtype="float32")
        fn(grid, block, args)

    run.out = out
    return run
