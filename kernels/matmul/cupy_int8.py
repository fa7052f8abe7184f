"""int8 matmul on the GPU: C (M, N) int32 = A (M, K) int8 @ B (K, N) int8, exact.

cupy.matmul on int8 arrays returns int8 (it wraps around), so neither it nor cuBLAS's default path gives int32.
Two paths:
  cublas  cublasGemmEx with CUDA_R_8I operands, a CUDA_R_32I result and CUBLAS_COMPUTE_32I (tensor-core IMMA on
          Turing and later) in the "TN" layout its int8 kernels require, where every dimension is a multiple of 4
  dp4a    cupy_int8.cu's __dp4a kernel otherwise (K zero-padded to a multiple of 4)
B is transposed (and padded) once when the case is prepared: in int8 inference the weights are fixed and stored
that way. path() picks one; it needs no GPU, so the choice is tested anywhere.
"""

from __future__ import annotations

from pathlib import Path

from hetero.kernels import cuda_source

SOURCE = Path(__file__).with_name("cupy_int8.cu")
TUNING = {"DP4A_TILE": 16}
NAMES = ("matmul_i8_dp4a",)
_MODULES: dict = {}
_R_8I, _R_32I, _COMPUTE_32I, _GEMM_DEFAULT = 3, 10, 72, -1  # cudaDataType_t, cublasComputeType_t, cublasGemmAlgo_t


def path(M: int, N: int, K: int) -> str:
    """'cublas' where cuBLAS's int8 GEMM takes the shape (every dimension a multiple of 4), else 'dp4a'."""
    return "cublas" if M % 4 == 0 and N % 4 == 0 and K % 4 == 0 else "dp4a"


def module():
    import cupy as cp

    dev = cp.cuda.Device().id
    if dev not in _MODULES:
        _MODULES[dev] = cp.RawModule(code=cuda_source.defines(TUNING) + SOURCE.read_text(), options=("-std=c++17",))
    return _MODULES[dev]


def prepare(a, b, M: int, N: int, K: int):
    """launch() computing out (M, N) int32 from device int8 a (M, K), b (K, N); launch.out is out."""
    import cupy as cp

    out = cp.empty((M, N), cp.int32)
    if path(M, N, K) == "cublas":
        bt = cp.ascontiguousarray(b.T)  # (N, K): column-major (K, N), op T

        def launch():
            _gemm_ex(a, bt, out, M, N, K)

    else:
        K4 = -(-K // 4)
        ap, btp = cp.zeros((M, 4 * K4), cp.int8), cp.zeros((N, 4 * K4), cp.int8)
        ap[:, :K], btp[:, :K] = a, b.T
        a4, bt4 = ap.view(cp.int32), btp.view(cp.int32)  # (M, K4), (N, K4) words
        fn, t = module().get_function(NAMES[0]), TUNING["DP4A_TILE"]
        grid, block = (-(-N // t), -(-M // t)), (t, t)

        def launch():
            fn(grid, block, (a4, bt4, out, cp.int32(M), cp.int32(N), cp.int32(K4)))

    launch.out = out
    return launch


def _gemm_ex(a, bt, c, M: int, N: int, K: int) -> None:
    """Row-major c (M, N) = a (M, K) @ bt^T. cuBLAS is column-major: c^T (N, M) = op(bt) @ a^T with op = T on bt
    (stored (N, K) row-major = (K, N) column-major, ld K) and a^T = a as stored ((K, M) column-major, ld K)."""
    import numpy as np
    from cupy.cuda import cublas, device

    one, zero = np.ones(1, np.int32), np.zeros(1, np.int32)  # host int32 scalars for CUBLAS_COMPUTE_32I
    cublas.gemmEx(
        device.get_cublas_handle(),
        1,  # CUBLAS_OP_T
        0,  # CUBLAS_OP_N
        N,
        M,
        K,
        one.ctypes.data,
        bt.data.ptr,
        _R_8I,
        K,
        a.data.ptr,
        _R_8I,
        K,
        zero.ctypes.data,
        c.data.ptr,
        _R_32I,
        N,
        _COMPUTE_32I,
        _GEMM_DEFAULT,
    )
