"""Launcher for kernels/attention/flash_attention.cu through cupy.RawModule (one compiled module per device).

    run = prepare(q, k, v, dtype, causal, scale)   # q, k, v: cupy arrays (B, H, S, D); dtype float32|float16|bfloat16
    run()                                          # fills run.out: (B, H, S, D), float32 or 16-bit bits (uint16)

16-bit data is passed as raw 16-bit patterns (cupy float16, or uint16 holding bfloat16 bits).
"""

from __future__ import annotations

import math
from pathlib import Path

from hetero.kernels import cuda_source

SOURCE = Path(__file__).with_name("flash_attention.cu")
TUNING = {"FA_WARPS": 4, "FA_MT": 2, "FA_BC": 64, "FA_BC_WIDE": 32, "FA_PAD": 8, "F32_ROWS": 32, "F32_BC": 32}
HEAD_DIMS = tuple(range(16, 129, 16))  # padded head dims compiled; D <= 128
_MODULES: dict = {}  # device id -> RawModule


def _names() -> list[str]:
    return [f"flash_attn_mma<{bf},{dp}>" for bf in (0, 1) for dp in HEAD_DIMS] + [
        f"flash_attn_f32<{dp}>" for dp in HEAD_DIMS
    ]


def text(helpers: str | None = None) -> str:
    """The CUDA C that NVRTC compiles: TUNING's #defines, the PTX helpers (or `helpers`), flash_attention.cu."""
    return cuda_source.text(SOURCE, TUNING, helpers)


def module():
    """The compiled module for the current device (NVRTC, cached by CuPy on disk and here in memory)."""
    import cupy as cp

    dev = cp.cuda.Device().id
    if dev not in _MODULES:
        _MODULES[dev] = cp.RawModule(code=text(), options=("-std=c++17",), name_expressions=_names())
    return _MODULES[dev]


def kernel_name(dtype: str, dp: int) -> str:
    return f"flash_attn_f32<{dp}>" if dtype == "float32" else f"flash_attn_mma<{int(dtype == 'bfloat16')},{dp}>"


def prepare(q, k, v, dtype: str, causal: bool, scale: float):
    """A callable that runs attention on device arrays q, k, v (B, H, S, D); its result lands in `.out`."""
    import cupy as cp

    B, H, S, D = q.shape
    if D > HEAD_DIMS[-1]:
        raise ValueError(f"cupy attention supports head dim <= {HEAD_DIMS[-1]}, got {D}")
    dp = -(-D // 16) * 16
    mod = module()
    fn = mod.get_function(kernel_name(dtype, dp))
    scale_log2 = cp.float32(scale * math.log2(math.e))
    if dtype == "float32":
        out = cp.empty((B, H, S, D), cp.float32)
        rows = TUNING["F32_ROWS"]
        args = (q, k, v, out, cp.int32(S), cp.int32(D), scale_log2, cp.int32(int(causal)))
        grid, block, smem = (-(-S // rows), B * H), (4 * rows,), 0
    else:
        ld = -(-D // 8) * 8  # cp.async moves 16-byte chunks: pad rows to a multiple of 8 elements
        if ld != D:
            q, k, v = (cp.pad(x, ((0, 0), (0, 0), (0, 0), (0, ld - D))) for x in (q, k, v))
        out = cp.empty((B, H, S, D), q.dtype)
        br = 16 * TUNING["FA_MT"] * TUNING["FA_WARPS"]
        bc = TUNING["FA_BC_WIDE"] if dp > 64 else TUNING["FA_BC"]
        smem = (br + 4 * bc) * (dp + TUNING["FA_PAD"]) * 2
        if smem > 48 * 1024:
            fn.max_dynamic_shared_size_bytes = smem
        args = (q, k, v, out, cp.int32(S), cp.int32(D), cp.int32(ld), scale_log2, cp.int32(int(causal)))
        grid, block = (-(-S // br), B * H), (32 * TUNING["FA_WARPS"],)

    def run():
        fn(grid, block, args, shared_mem=smem)

    run.out = out
    return run
