"""numba conv2d's TAPS tiles both ways, whatever OpenBLAS this machine runs: a few rows a tile (OpenBLAS with
small-matrix kernels, no packing) and whole images split over the threads (the others); see
kernels/conv2d/numba_conv2d.py. The channel-blocked FMA kernel that takes these shapes on AVX2 CPUs is turned off
here (tests/test_numba_conv2d_blocked.py tests it). Each against the reference, with a stride, bias and fewer images
than threads."""

import numpy as np
import pytest

from hetero.backends.registry import backend_class
from hetero.workloads import get

# (shape, the small-matrix limit that makes a tile a few rows of it: 6 of 13, and 3 of 9)
SHAPES = [
    (dict(N=3, C=16, H=13, W=11, K=24, R=3, S=3, padding=1), 30_000),
    (dict(N=1, C=20, H=18, W=9, K=8, R=4, S=4, stride=2, padding=1), 2_400),  # one image: rows split over threads
]


@pytest.mark.parametrize("small_kernels", [True, False], ids=["rows", "images"])
@pytest.mark.parametrize("p,limit", SHAPES, ids=range(len(SHAPES)))
def test_taps_tiles_match_reference(monkeypatch, p, limit, small_kernels):
    if backend_class("numba").unavailable():
        pytest.skip(backend_class("numba").unavailable())
    from hetero.kernels.conv2d import numba_conv2d

    monkeypatch.setattr(numba_conv2d.blocked, "applies", lambda: False)
    monkeypatch.setattr(numba_conv2d, "small_gemm_kernels", lambda: small_kernels)
    monkeypatch.setattr(numba_conv2d, "SMALL_GEMM", limit)
    wl = get("conv2d")
    case = wl.case(p)
    inp = wl.make_inputs(case)
    bias = np.linspace(-1, 1, p["K"]).astype(np.float32)
    P, Q = wl.out_hw(case.p)
    out = np.full((p["N"], p["K"], P, Q), np.nan, np.float32)
    s, pad = p.get("stride", 1), p["padding"]
    numba_conv2d.conv2d(inp["input"], inp["weight"], bias, (s, s), (pad, pad), (1, 1), out)
    ref = wl.reference(case, {**inp, "bias": bias})
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
