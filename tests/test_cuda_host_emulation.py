"""The CUDA col2im kernel (kernels/conv2d/cupy_conv2d.cu) runs on the CPU: g++ compiles it with a shim that loops
over the launch's blocks and threads, which suits kernels with no shared memory or warp operations. Its output,
after the launcher's planned GEMMs (one a group, at element offsets) done in NumPy, is checked against the
conv_transpose2d reference, so the indexing is tested where no GPU is; the GPU tests (tests/gpu) check the real
launch. (conv2d's implicit GEMMs use shared memory: tests/test_cuda_warp_emulation.py runs them.) Skipped without
g++."""

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from hetero.kernels.conv2d import cupy_conv2d
from hetero.workloads import get
from hetero.workloads.base import Case

GXX = shutil.which("g++")
pytestmark = pytest.mark.skipif(GXX is None, reason="g++ not found: the host emulation compiles the kernels with it")

HOST = r"""
struct dim3_ { unsigned x = 1, y = 1, z = 1; };
static dim3_ blockIdx, threadIdx, blockDim, gridDim;
#define __global__
#define __launch_bounds__(x)
#define __restrict__
#include "KERNELS"
template <class F> static void launch(unsigned gx, unsigned gy, unsigned bx, F f) {
  gridDim.x = gx; gridDim.y = gy; blockDim.x = bx;
  for (unsigned y = 0; y < gy; ++y) for (unsigned x = 0; x < gx; ++x) for (unsigned t = 0; t < bx; ++t) {
    blockIdx.x = x; blockIdx.y = y; threadIdx.x = t; f(); }
}
#define GEO int sh, int sw, int ph, int pw, int dh, int dw
extern "C" void run_col2im(const float* cols, float* out, int gx, int gy, int bx, int K, int H, int W, int R, int S,
                           int Ho, int Wo, GEO) {
  launch(gx, gy, bx, [&] { col2im_gather(cols, out, K, H, W, R, S, Ho, Wo, sh, sw, ph, pw, dh, dw); });
}
"""


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    d = tmp_path_factory.mktemp("cuda_host")
    (d / "host.cpp").write_text(HOST.replace("KERNELS", str(cupy_conv2d.SOURCE)))
    out = subprocess.run(
        [GXX, "-O1", "-std=c++17", "-shared", "-fPIC", str(d / "host.cpp"), "-o", str(d / "h.so")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return ctypes.CDLL(str(d / "h.so"))


def _ptr(a: np.ndarray) -> ctypes.c_void_p:
    return ctypes.c_void_p(a.ctypes.data)


def _args(*ints):
    return [ctypes.c_int(int(v)) for v in ints]


def _launch(per_image: int, images: int, blocks: int | None) -> tuple:
    """The launcher's grid, or one with `blocks` blocks a row so the kernels' grid-stride loops go round."""
    (gx, gy), (bx,) = cupy_conv2d._grid(per_image, images)
    return (gx if blocks is None else blocks), gy, bx


def _gemms(a, b, c, calls: list[dict], batch: int, trans_a=False) -> None:
    """cupy_conv2d._run_gemms in NumPy: each planned row-major GEMM at its element offsets and batch strides."""
    fa, fb, fc = a.reshape(-1), b.reshape(-1), c.reshape(-1)
    for g in calls:
        m, n, k = g["m"], g["n"], g["k"]
        op_a = fa[g["a"] : g["a"] + m * k].reshape((k, m) if trans_a else (m, k)).astype(np.float64)
        op_a = op_a.T if trans_a else op_a
        for i in range(batch):
            rows = fb[g["b"] + i * g["stride_b"] :][: k * n].reshape(k, n)
            fc[g["c"] + i * g["stride_c"] :][: m * n] = (op_a @ rows).reshape(-1)


BASE = dict(N=2, C=3, H=5, W=7, K=4, R=3, S=3, stride=1, padding=0, dilation=1)
SHAPES = [
    BASE,
    BASE | dict(stride=2, padding=1),
    BASE | dict(padding=2, dilation=2),
    BASE | dict(R=1, S=1),
    BASE | dict(N=3, C=5, H=9, W=6, R=2, S=4, stride=3, padding=1),
    # groups (depthwise, and two input channels a group) and a different stride, padding, dilation along W
    BASE | dict(C=4, K=4, groups=4, padding=1),
    BASE | dict(C=6, K=9, groups=3, H=8, W=11, stride=2, stride_w=1, padding=1, padding_w=0, dilation_w=2),
]


@pytest.mark.parametrize("blocks", [None, 1])
@pytest.mark.parametrize(
    "p",
    SHAPES[:3] + SHAPES[-2:] + [BASE | dict(stride=2, padding=1, output_padding=1, output_padding_w=0)],
    ids=range(6),
)
def test_gemm_then_col2im_is_conv_transpose2d(lib, p, blocks):
    wl = get("conv_transpose2d")
    case = Case("conv_transpose2d", tuple((p | {"output_padding": p.get("output_padding", 0)}).items()))
    inp = wl.make_inputs(case)
    x, w = inp["input"], inp["weight"]
    N, C, H, W = x.shape
    _, kg, R, S = w.shape
    K = kg * p.get("groups", 1)
    Ho, Wo = wl.out_hw(case.p)
    cols = np.full((N, K * R * S, H * W), np.nan, np.float32)
    _gemms(w, x, cols, cupy_conv2d.conv_transpose2d_gemms(N, K, C, R * S, H * W, p.get("groups", 1)), N, True)
    out = np.full((N, K, Ho, Wo), np.nan, np.float32)
    geo = (K, H, W, R, S, Ho, Wo, *cupy_conv2d.geometry(case.p))
    lib.run_col2im(_ptr(cols), _ptr(out), *_args(*_launch(K * Ho * Wo, N, blocks), *geo))
    np.testing.assert_allclose(out, wl.reference(case, inp), atol=1e-4)
