"""Launcher for the implicit-GEMM conv2d kernels, which read their patches straight from the input (no im2col
buffer, one launch for every group and image): kernels/conv2d/conv_igemm.cu, float16 / bfloat16 on tensor cores,
and kernels/conv2d/conv_sgemm.cu, float32 on CUDA cores (FFMA, no tf32).

    run = prepare(x, w, dtype, p, (P, Q))   # x (N, C, H, W), w (K, C/groups, R, S): cupy float32 or 16-bit arrays
    run()                                   # fills run.out: (N, K, P, Q), x's dtype (bfloat16 as uint16 bits)
"""

from __future__ import annotations

from pathlib import Path

from hetero.kernels import cuda_source

SOURCE = Path(__file__).with_name("conv_igemm.cu")
SOURCE_F32 = Path(__file__).with_name("conv_sgemm.cu")
TUNING = {"IG_BM": 128, "IG_BN": 128, "IG_BK": 32}  # block tile: output channels, output pixels, reduction
NAMES = ("conv_igemm<0>", "conv_igemm<1>", "conv_sgemm")  # float16, bfloat16, float32
F32_TILE, F32_THREADS, F32_SMEM = 128, 256, 2 * (8 * 128 + 8 * 128) * 4  # conv_sgemm.cu's SG_* defaults
_MODULES: dict = {}


def threads(t: dict = TUNING) -> int:
    """Threads a block: a warp for every 32 x 64 piece of the (IG_BM, IG_BN) tile."""
    return 32 * (t["IG_BM"] // 32) * (t["IG_BN"] // 64)


def smem_bytes(t: dict = TUNING) -> int:
    """Dynamic shared memory: two buffers of the padded weight (IG_BM, IG_BK + 8) and patch (IG_BK, IG_BN + 8)
    tiles, 2 bytes an element."""
    return 2 * (t["IG_BM"] * (t["IG_BK"] + 8) + t["IG_BK"] * (t["IG_BN"] + 8)) * 2


def text(helpers: str | None = None) -> str:
    """The tuning's #defines, the PTX helpers (or `helpers`), conv_igemm.cu, then conv_sgemm.cu."""
    return cuda_source.text(SOURCE, TUNING, helpers) + "\n" + SOURCE_F32.read_text()


def module():
    import cupy as cp

    dev = cp.cuda.Device().id
    if dev not in _MODULES:
        _MODULES[dev] = cp.RawModule(code=text(), options=("-std=c++17",), name_expressions=NAMES)
    return _MODULES[dev]


def grid(N: int, K: int, groups: int, out_hw: tuple[int, int], tile: tuple[int, int] | None = None):
    """(pixel blocks, channel blocks, groups) for a (channels, pixels) block tile (default: the 16-bit kernel's);
    the kernels index pixels and weights in 32 bits."""
    P, Q = out_hw
    bm, bn = tile or (TUNING["IG_BM"], TUNING["IG_BN"])
    if N * P * Q >= 2**31 or groups > 65535:
        raise ValueError(f"conv_igemm takes N*P*Q < 2**31 and at most 65535 groups, got {N * P * Q} and {groups}")
    return -(-N * P * Q // bn), -(-(K // groups) // bm), groups


def prepare(x, w, dtype: str, p: dict, out_hw: tuple[int, int]):
    """A callable computing conv2d of device arrays x (N, C, H, W), w (K, C/groups, R, S); result in `.out`."""
    import cupy as cp

    from hetero.kernels.conv2d.cupy_conv2d import geometry

    N, C, H, W = x.shape
    K, _, R, S = w.shape
    groups = p.get("groups", 1)
    out = cp.empty((N, K, *out_hw), x.dtype)
    x, w = cp.ascontiguousarray(x), cp.ascontiguousarray(w)
    args = (x, w, out, *(cp.int32(v) for v in (N, C, H, W, K, R, S, *out_hw, *geometry(p), groups)))
    if dtype == "float32":
        fn, block, smem = module().get_function("conv_sgemm"), (F32_THREADS,), F32_SMEM
        blocks = grid(N, K, groups, out_hw, (F32_TILE, F32_TILE))
    else:
        fn, block, smem = module().get_function(NAMES[int(dtype == "bfloat16")]), (threads(),), smem_bytes()
        blocks = grid(N, K, groups, out_hw)

    def run():
        fn(blocks, block, args, shared_mem=smem)

    run.out = out
    return run
