"""The tensor-core kernels run on the CPU: g++ compiles their own text with tests/cuda_warp_shim.h pasted in place
of the PTX helpers, a std::thread per GPU thread, ldmatrix, mma.sync and wgmma emulated lane by lane as the PTX ISA
lays out their fragments and shared-memory descriptors. Checked against the workloads' references on
16-bit-rounded inputs: conv_igemm (tiles cut by every edge, several stages, groups, per-axis geometry),
flash_attn_mma and flash_attn_sm90 (partial query and key tiles, causal, head sizes padded to their tile).
What this cannot check: timing, cp.async and wgmma ordering (both complete at once here), bank conflicts,
register use (tests/test_cuda_sources.py compiles for sm_90/sm_90a and checks spills), and whether the hardware
reads a descriptor as the PTX ISA describes it (the cupy launcher's self-check does that on the first GPU use).
Skipped without g++."""

import ctypes
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hetero.kernels.attention import cupy_attention, cupy_attention_sm90
from hetero.kernels.conv2d import cupy_conv2d, cupy_igemm
from hetero.workloads import get
from hetero.workloads.base import Case

GXX = shutil.which("g++")
pytestmark = pytest.mark.skipif(GXX is None, reason="g++ not found: the host emulation compiles the kernels with it")
SHIM = (Path(__file__).parent / "cuda_warp_shim.h").read_text()

WRAPPERS = r"""
#define I int
extern "C" void conv(I bf16, const u16* x, const u16* w, u16* out, I N, I C, I H, I W, I K, I R, I S, I P, I Q,
                     I sh, I sw, I ph, I pw, I dh, I dw, I groups, I gx, I gy, I gz, I threads) {
  launch({(unsigned)gx, (unsigned)gy, (unsigned)gz}, threads, [&] {
    if (bf16) conv_igemm<1>(x, w, out, N, C, H, W, K, R, S, P, Q, sh, sw, ph, pw, dh, dw, groups);
    else conv_igemm<0>(x, w, out, N, C, H, W, K, R, S, P, Q, sh, sw, ph, pw, dh, dw, groups);
  });
}
extern "C" void convf(const float* x, const float* w, float* out, I N, I C, I H, I W, I K, I R, I S, I P, I Q,
                      I sh, I sw, I ph, I pw, I dh, I dw, I groups, I gx, I gy, I gz) {
  launch({(unsigned)gx, (unsigned)gy, (unsigned)gz}, 256, [&] {
    conv_sgemm(x, w, out, N, C, H, W, K, R, S, P, Q, sh, sw, ph, pw, dh, dw, groups);
  });
}
extern "C" void attn(I bf16, const u16* q, const u16* k, const u16* v, u16* o, I BH, I S, I D, I ld, float sl2,
                     I causal) {
  launch({(unsigned)((S + FA_BR - 1) / FA_BR), (unsigned)BH, 1u}, FA_THREADS, [&] {
    if (bf16) flash_attn_mma<1, 64>(q, k, v, o, S, D, ld, sl2, causal);
    else flash_attn_mma<0, 64>(q, k, v, o, S, D, ld, sl2, causal);
  });
}
extern "C" void attn90(I bf16, I dp, const u16* q, const u16* k, const u16* vt, u16* o, I BH, I S, I D, I ld, I s8,
                       float sl2, I causal) {
  const int rows = 64 * (dp > 64 ? F3_WG_WIDE : F3_WG);
  launch({(unsigned)((S + rows - 1) / rows), (unsigned)BH, 1u}, 2 * rows, [&] {
    if (dp == 64 && bf16) flash_attn_sm90<1, 64>(q, k, vt, o, S, D, ld, s8, sl2, causal);
    if (dp == 64 && !bf16) flash_attn_sm90<0, 64>(q, k, vt, o, S, D, ld, s8, sl2, causal);
    if (dp == 128 && bf16) flash_attn_sm90<1, 128>(q, k, vt, o, S, D, ld, s8, sl2, causal);
    if (dp == 128 && !bf16) flash_attn_sm90<0, 128>(q, k, vt, o, S, D, ld, s8, sl2, causal);
  });
}
"""


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    d = tmp_path_factory.mktemp("cuda_warp")
    src = cupy_igemm.text(helpers=SHIM) + cupy_attention.text(helpers="") + cupy_attention_sm90.text(helpers="")
    src += WRAPPERS
    (d / "warp.cpp").write_text(src)
    cmd = [GXX, "-O1", "-std=c++20", "-pthread", "-shared", "-fPIC", str(d / "warp.cpp"), "-o", str(d / "w.so")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return ctypes.CDLL(str(d / "w.so"))


def to16(a: np.ndarray, bf16: bool) -> np.ndarray:
    """float32 -> 16-bit patterns (uint16), rounding to nearest even as the GPU's cvt.rn does."""
    if not bf16:
        return np.ascontiguousarray(a, np.float16).view(np.uint16)
    b = np.ascontiguousarray(a, np.float32).view(np.uint32).astype(np.uint64)
    return ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)


def from16(h: np.ndarray, bf16: bool) -> np.ndarray:
    return (h.astype(np.uint32) << 16).view(np.float32) if bf16 else h.view(np.float16).astype(np.float32)


def _c(*vals):
    return [ctypes.c_int(int(v)) for v in vals]


def _p(a: np.ndarray) -> ctypes.c_void_p:
    return ctypes.c_void_p(a.ctypes.data)


BASE = dict(N=2, C=3, H=5, W=7, K=4, R=3, S=3, stride=1, padding=0, dilation=1)
CONV = [
    BASE,  # one block, one stage, every tile edge cut
    BASE | dict(C=8, H=9, W=10, K=20, stride=2, padding=1),  # three stages
    BASE | dict(padding=2, dilation=2),
    BASE | dict(C=4, K=4, groups=4, padding=1),  # depthwise
    BASE | dict(C=6, K=9, groups=3, H=8, W=11, stride=2, stride_w=1, padding=1, padding_w=0, dilation_w=2),
    dict(N=1, C=2, H=12, W=12, K=130, R=1, S=1, stride=1, padding=0, dilation=1),  # 2 x 2 blocks of 128
]


@pytest.mark.parametrize("bf16", [False, True], ids=["float16", "bfloat16"])
@pytest.mark.parametrize("p", CONV, ids=range(len(CONV)))
def test_conv_igemm_is_conv2d(lib, p, bf16):
    wl = get("conv2d")
    case = Case("conv2d", tuple(p.items()))
    inp = wl.make_inputs(case)
    x, w = to16(inp["input"], bf16), to16(inp["weight"], bf16)
    N, C, H, W = x.shape
    K, _, R, S = w.shape
    P, Q = wl.out_hw(case.p)
    groups = p.get("groups", 1)
    out = np.full((N, K, P, Q), 0x7E00, np.uint16)  # NaN patterns: a position never written shows
    geo = (N, C, H, W, K, R, S, P, Q, *cupy_conv2d.geometry(case.p), groups)
    grid = cupy_igemm.grid(N, K, groups, (P, Q))
    lib.conv(_c(bf16)[0], _p(x), _p(w), _p(out), *_c(*geo, *grid, cupy_igemm.threads()))
    ref = wl.reference(case, {**inp, "input": from16(x, bf16), "weight": from16(w, bf16)})
    tol = 2**-7 if bf16 else 2**-10  # the output's own 16-bit rounding, fp32 accumulation
    np.testing.assert_allclose(from16(out, bf16), ref, rtol=tol, atol=tol * np.abs(ref).max())


def _attention_ref(q16, k16, v16, D, causal, bf16):
    """float64 softmax(q k^T / sqrt(D)) v of the 16-bit inputs (B*H, S, >= D), causal as PyTorch aligns it."""
    qf, kf, vf = (from16(a, bf16)[..., :D].astype(np.float64) for a in (q16, k16, v16))
    S = qf.shape[1]
    s = qf @ kf.transpose(0, 2, 1) / math.sqrt(D)
    if causal:
        s = np.where(np.tri(S, dtype=bool), s, -np.inf)
    pr = np.exp(s - s.max(-1, keepdims=True))
    return (pr / pr.sum(-1, keepdims=True)) @ vf


def _qkv16(BH, S, D, ld, bf16):
    rng = np.random.default_rng(S + D)
    return [to16(np.pad(rng.standard_normal((BH, S, D)), ((0, 0), (0, 0), (0, ld - D))), bf16) for _ in range(3)]


# float32 adds a 1x1 kernel and a wide kernel at stride 3 (conv2d's only GPU path in float32 since the im2col one)
CONV_F32 = CONV + [BASE | dict(R=1, S=1), BASE | dict(N=3, C=5, H=9, W=6, R=2, S=4, stride=3, padding=1)]


@pytest.mark.parametrize("p", CONV_F32, ids=range(len(CONV_F32)))
def test_conv_sgemm_is_conv2d(lib, p):
    wl = get("conv2d")
    case = Case("conv2d", tuple(p.items()))
    inp = wl.make_inputs(case)
    x, w = inp["input"], inp["weight"]
    N, C, H, W = x.shape
    K, _, R, S = w.shape
    P, Q = wl.out_hw(case.p)
    groups = p.get("groups", 1)
    out = np.full((N, K, P, Q), np.nan, np.float32)  # a position never written shows
    geo = (N, C, H, W, K, R, S, P, Q, *cupy_conv2d.geometry(case.p), groups)
    grid = cupy_igemm.grid(N, K, groups, (P, Q), (cupy_igemm.F32_TILE, cupy_igemm.F32_TILE))
    fp = ctypes.POINTER(ctypes.c_float)
    lib.convf(x.ctypes.data_as(fp), w.ctypes.data_as(fp), out.ctypes.data_as(fp), *_c(*geo, *grid))
    ref = wl.reference(case, inp)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


@pytest.mark.parametrize("bf16", [False, True], ids=["float16", "bfloat16"])
@pytest.mark.parametrize("S,D,causal", [(150, 64, 0), (150, 64, 1), (70, 56, 1)])
def test_flash_attn_mma_is_attention(lib, S, D, causal, bf16):
    BH, ld = 2, -(-D // 8) * 8
    q16, k16, v16 = _qkv16(BH, S, D, ld, bf16)
    out = np.full((BH, S, D), 0x7E00, np.uint16)
    sl2 = ctypes.c_float(math.log2(math.e) / math.sqrt(D))
    lib.attn(*_c(bf16), _p(q16), _p(k16), _p(v16), _p(out), *_c(BH, S, D, ld), sl2, *_c(causal))
    tol = 2**-6 if bf16 else 2**-9  # P is rounded to 16 bits before P V, then the output
    np.testing.assert_allclose(from16(out, bf16), _attention_ref(q16, k16, v16, D, causal, bf16), rtol=tol, atol=tol)


# (S, D, causal): partial query and key tiles, several key tiles, head dims padded to 64 and 128
SM90 = [(150, 64, 0), (300, 64, 1), (70, 60, 1), (150, 128, 0), (200, 120, 1)]


@pytest.mark.parametrize("bf16", [False, True], ids=["float16", "bfloat16"])
@pytest.mark.parametrize("S,D,causal", SM90)
def test_flash_attn_sm90_is_attention(lib, S, D, causal, bf16):
    BH, ld, s8 = 2, -(-D // 8) * 8, -(-S // 8) * 8
    dp = cupy_attention_sm90.padded_head_dim(D)
    q16, k16, v16 = _qkv16(BH, S, D, ld, bf16)
    vt = np.zeros((BH, D, s8), np.uint16)  # as the launcher builds it: V^T, zero past S
    vt[..., :S] = v16[..., :D].transpose(0, 2, 1)
    out = np.full((BH, S, D), 0x7E00, np.uint16)
    sl2 = ctypes.c_float(math.log2(math.e) / math.sqrt(D))
    lib.attn90(*_c(bf16, dp), _p(q16), _p(k16), _p(vt), _p(out), *_c(BH, S, D, ld, s8), sl2, *_c(causal))
    tol = 2**-6 if bf16 else 2**-9
    np.testing.assert_allclose(from16(out, bf16), _attention_ref(q16, k16, v16, D, causal, bf16), rtol=tol, atol=tol)
