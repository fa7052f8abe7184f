"""Launcher for kernels/attention/flash_attention_sm90.cu: 16-bit attention on Hopper's warpgroup MMA (wgmma).

    if usable(dtype, D):                           # a compute-capability 9.0 GPU, float16/bfloat16, D in HEAD_DIMS
        run = prepare(q, k, v, dtype, causal, scale)   # q, k, v: cupy arrays (B, H, S, D), 16-bit patterns
        run()                                          # fills run.out: (B, H, S, D), q's dtype

wgmma exists only on the sm_90a target, which CuPy's RawModule does not name when it compiles (it passes
-arch=sm_90), so this module calls NVRTC itself with -arch=sm_90a and has a RawModule load the cubin. The kernel
was written without a GPU to run it on (checked by nvcc for sm_90a and by the host emulation in
tests/test_cuda_warp_emulation.py), so its first use on a device compares it with the mma.sync kernel
(cupy_attention) on small cases: a mismatch disables it for the session with a warning, and attention runs on
the mma.sync kernel instead.
"""

from __future__ import annotations

import functools
import itertools
import math
import tempfile
import warnings
from pathlib import Path

from hetero.kernels import cuda_source, wgmma_ptx

SOURCE = Path(__file__).with_name("flash_attention_sm90.cu")
TUNING = {"F3_WG": 3, "F3_WG_WIDE": 2, "F3_BC": 128, "F3_BC_WIDE": 64}
HEAD_DIMS = (64, 128)  # padded head dims compiled: 48 < D <= 64 and 112 < D <= 128
NAMES = tuple(f"flash_attn_sm90<{bf},{dp}>" for bf in (0, 1) for dp in HEAD_DIMS)
_MODULES: dict = {}  # (device id, tuning) -> (RawModule, {name: lowered name}, the cubin's folder)


def key_tile(dp: int, t: dict = TUNING) -> int:
    return t["F3_BC_WIDE"] if dp > 64 else t["F3_BC"]


def query_tile(dp: int, t: dict = TUNING) -> int:
    """Query rows a block: 64 a warpgroup."""
    return 64 * (t["F3_WG_WIDE"] if dp > 64 else t["F3_WG"])


def smem_bytes(dp: int, t: dict = TUNING) -> int:
    """Dynamic shared memory: Q (query_tile, dp) and two buffers each of K (BC, dp) and V^T (dp, BC), 16-bit."""
    return (query_tile(dp, t) * dp + 4 * key_tile(dp, t) * dp) * 2


def padded_head_dim(D: int) -> int | None:
    """The compiled head dim D runs in (zero-padded), or None where this kernel has none."""
    return next((dp for dp in HEAD_DIMS if D <= dp and dp - D < 16), None)


def text(helpers: str | None = None, tuning: dict = TUNING) -> str:
    """The tuning's #defines, the PTX helpers (mma_ptx.cuh and the wgmma wrappers, or `helpers`), the kernel."""
    if helpers is None:
        widths = tuple(HEAD_DIMS) + tuple(key_tile(dp, tuning) for dp in HEAD_DIMS)
        helpers = cuda_source.HELPERS.read_text() + wgmma_ptx.helpers(widths)
    return cuda_source.text(SOURCE, tuning, helpers)


def module(tuning: dict = TUNING):
    """(RawModule, lowered names) for the current device and tuning, compiled by NVRTC for sm_90a into a cubin
    file that the RawModule loads (kept in a temporary folder for the process's life)."""
    import cupy as cp
    from cupy_backends.cuda.libs import nvrtc

    dev = cp.cuda.Device().id
    key = (dev, tuple(sorted(tuning.items())))
    if key not in _MODULES:
        prog = nvrtc.createProgram(text(tuning=tuning), "flash_attention_sm90.cu", (), ())
        try:
            for name in NAMES:
                nvrtc.addNameExpression(prog, name)
            try:
                nvrtc.compileProgram(prog, ("-std=c++17", "-arch=sm_90a", "--device-as-default-execution-space"))
            except nvrtc.NVRTCError as e:
                raise RuntimeError(f"NVRTC could not build {SOURCE.name}: {nvrtc.getProgramLog(prog)}") from e
            lowered = {name: nvrtc.getLoweredName(prog, name) for name in NAMES}
            folder = tempfile.TemporaryDirectory(prefix="hetero-sm90-")
            cubin = Path(folder.name) / "flash_attention_sm90.cubin"
            cubin.write_bytes(nvrtc.getCUBIN(prog))
        finally:
            nvrtc.destroyProgram(prog)
        _MODULES[key] = (cp.RawModule(path=str(cubin)), lowered, folder)
    return _MODULES[key][:2]


def prepare(q, k, v, dtype: str, causal: bool, scale: float, tuning: dict = TUNING):
    """A callable that runs attention on 16-bit device arrays q, k, v (B, H, S, D); its result lands in `.out`."""
    import cupy as cp

    B, H, S, D = q.shape
    dp = padded_head_dim(D)
    if dp is None or dtype not in ("float16", "bfloat16"):
        raise ValueError(
            f"the sm90 attention kernel takes float16/bfloat16 and head dims 49-64 or 113-128, got {dtype} and {D}"
        )
    ld, s8 = -(-D // 8) * 8, -(-S // 8) * 8  # cp.async moves 16-byte chunks: rows padded to 8 elements
    if ld != D:
        q, k = (cp.pad(x, ((0, 0), (0, 0), (0, 0), (0, ld - D))) for x in (q, k))
    vt = cp.zeros((B, H, D, s8), q.dtype)  # V^T: keys contiguous, zero past S
    out = cp.empty((B, H, S, D), q.dtype)
    mod, lowered = module(tuning)
    fn = mod.get_function(lowered[f"flash_attn_sm90<{int(dtype == 'bfloat16')},{dp}>"])
    smem = smem_bytes(dp, tuning)
    fn.max_dynamic_shared_size_bytes = smem
    scale_log2 = cp.float32(scale * math.log2(math.e))
    args = (q, k, vt, out, cp.int32(S), cp.int32(D), cp.int32(ld), cp.int32(s8), scale_log2, cp.int32(int(causal)))
    rows = query_tile(dp, tuning)
    grid, block = (-(-S // rows), B * H), (2 * rows,)

    def run():
        vt[..., :S] = v.transpose(0, 1, 3, 2)
        fn(grid, block, args, shared_mem=smem)

    run.out = out
    return run


def usable(dtype: str, D: int) -> bool:
    """Whether this kernel takes the case on the current device, its first-use self-check passed."""
    import cupy as cp

    if dtype not in ("float16", "bfloat16") or padded_head_dim(D) is None:
        return False
    return cp.cuda.Device().compute_capability == "90" and _self_check(cp.cuda.Device().id)


def _to16(cp, a, dtype: str):
    """float32 -> the kernels' 16-bit operands: float16, or bfloat16 bits (uint16, truncated)."""
    return a.astype(cp.float16) if dtype == "float16" else (a.view(cp.uint32) >> 16).astype(cp.uint16)


def _widen(cp, h, dtype: str):
    return h.astype(cp.float32) if dtype == "float16" else (h.astype(cp.uint32) << 16).view(cp.float32)


@functools.cache
def _self_check(dev: int) -> bool:
    """The kernel against the mma.sync kernel on small cases (every padded head dim, causal or not, both dtypes,
    partial tiles); False, with a warning, if it fails to build or disagrees."""
    import cupy as cp

    from hetero.kernels.attention import cupy_attention

    rng = cp.random.default_rng(0)
    try:
        for dp, causal, dtype in itertools.product(HEAD_DIMS, (False, True), ("float16", "bfloat16")):
            x = [rng.standard_normal((1, 2, 200, dp - 4), dtype=cp.float32) for _ in range(3)]
            q, k, v = (_to16(cp, a, dtype) for a in x)
            mine, ref = prepare(q, k, v, dtype, causal, 0.125), cupy_attention.prepare(q, k, v, dtype, causal, 0.125)
            mine()
            ref()
            err = float(cp.abs(_widen(cp, mine.out, dtype) - _widen(cp, ref.out, dtype)).max())
            if not err <= (5e-2 if dtype == "bfloat16" else 2e-2):
                raise ValueError(f"{dtype}, head dim {dp - 4}, causal={causal}: max difference {err:.3g}")
    except Exception as e:  # noqa: BLE001 - any failure means: use the proven kernel
        warnings.warn(f"sm90 attention kernel disabled, using the mma.sync kernel: {e}", RuntimeWarning, stacklevel=2)
        return False
    return True
