"""The channel-blocked FMA conv2d kernel (kernels/conv2d/numba_conv2d_blocked.py) against the reference, on any
CPU (LLVM lowers its FMAs wherever it runs; it is fast only on AVX2): channel counts that are not whole blocks,
blocks of 6 positions that run across output rows and a shorter last one, strides, dilation, uneven padding,
several tiles and weight chunks an image, fewer images than threads, int8 inputs, and non-finite inputs."""

import re

import numpy as np
import pytest

from conftest import assert_matches_with_non_finite, conv2d_loops, routed
from hetero.workloads import get

pytestmark = pytest.mark.usefixtures("needs_numba")

SHAPES = [  # conv2d parameters; stride, padding, dilation as (h, w)
    dict(N=2, C=16, H=9, W=11, K=16, R=3, S=3, padding=(1, 1)),
    dict(N=1, C=19, H=13, W=7, K=21, R=3, S=2, stride=(2, 1), padding=(1, 0), dilation=(1, 2)),
    dict(N=3, C=24, H=10, W=10, K=40, R=4, S=4, stride=(2, 2), padding=(1, 1)),
    dict(N=1, C=8, H=5, W=4, K=3, R=2, S=2),  # K < 16 and fewer than 16 positions: the scalar copy-out
    dict(N=2, C=33, H=17, W=23, K=33, R=5, S=3, stride=(3, 2), padding=(2, 1), dilation=(2, 1)),
]


def _run(p, bias=True, x_fill=None):
    from hetero.kernels.conv2d import numba_conv2d_blocked as blocked

    wl = get("conv2d")
    st, pad, dil = (p.get(k, (d, d)) for k, d in (("stride", 1), ("padding", 0), ("dilation", 1)))
    case = wl.case({**{k: v for k, v in p.items() if k not in ("stride", "padding", "dilation")}})
    inp = wl.make_inputs(case)
    x, w = inp["input"], inp["weight"]
    if x_fill is not None:
        x = x.copy()
        x.reshape(-1)[::97] = x_fill
    b = np.linspace(-1, 1, p["K"]).astype(np.float32) if bias else np.zeros(p["K"], np.float32)
    P = (p["H"] + 2 * pad[0] - dil[0] * (p["R"] - 1) - 1) // st[0] + 1
    Q = (p["W"] + 2 * pad[1] - dil[1] * (p["S"] - 1) - 1) // st[1] + 1
    out = np.full((p["N"], p["K"], P, Q), np.nan, np.float32)
    blocked.conv2d(x, w, b, st, pad, dil, out)
    ref = conv2d_loops(x, w, b, st, pad, dil)
    return out, ref


@pytest.mark.parametrize("p", SHAPES, ids=range(len(SHAPES)))
def test_blocked_matches_reference(p):
    out, ref = _run(p)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("p", SHAPES[1:3], ids=["dilated", "strided"])
def test_several_tiles_and_weight_chunks(monkeypatch, p):
    """Tiles of one row and one 8-channel block a weight chunk: the partial sums of each chunk add up in acc."""
    from hetero.kernels.conv2d import numba_conv2d_blocked as blocked

    monkeypatch.setattr(blocked, "TILE_BYTES", 1)
    monkeypatch.setattr(blocked, "W_CHUNK_BYTES", 1)
    out, ref = _run(p)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_inputs_stay_non_finite(value):
    out, ref = _run(SHAPES[0], x_fill=value)
    assert_matches_with_non_finite(out, ref)


def test_dense_conv2d_routes_here_on_avx2(monkeypatch):
    """numba_conv2d sends a 3x3 with 16+ channels here exactly when `applies` says this CPU should run it."""
    from hetero.kernels.conv2d import numba_conv2d_blocked as blocked

    x, w = np.ones((1, 16, 6, 6), np.float32), np.ones((16, 16, 3, 3), np.float32)
    taken, out = routed(monkeypatch, blocked, x, w)
    assert taken == blocked.applies()
    assert out[0, 0, 2, 2] == 144 and out[0, 0, 0, 0] == 64  # 16 channels x 9 taps inside, 4 taps at a corner


def test_int8_convolves_exactly_up_to_the_float32_bound(monkeypatch):
    """int8 conv2d on the blocked kernel (numba_conv2d_int8's BLOCKED, forced here on any CPU): at C*R*S = 1024
    with every value -128 the sums reach 2^24, the largest integer float32 holds with its neighbours; random
    values elsewhere. Equal to the int64 sums, with the int8 GEMM path's result alike."""
    from hetero.kernels.conv2d import numba_conv2d_blocked as blocked
    from hetero.kernels.conv2d import numba_conv2d_int8

    monkeypatch.setattr(blocked, "applies", lambda: True)
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (2, 64, 9, 10)).astype(np.int8)
    w = rng.integers(-128, 128, (24, 64, 4, 4)).astype(np.int8)
    x[0], w[:8] = -128, -128
    out = np.empty((2, 24, 8, 9), np.int32)
    numba_conv2d_int8.conv2d(x, w, (1, 1), (1, 1), (1, 1), 1, out)
    ref = conv2d_loops(x.astype(np.float64), w.astype(np.float64), np.zeros(24), (1, 1), (1, 1), (1, 1))
    want = np.rint(ref.astype(np.float64)).astype(np.int64)
    assert out[0, 0, 3, 3] == 2**24 and np.array_equal(out, want)


def test_microkernel_is_fmas_on_registers():
    """On a CPU the kernel applies to, a channel block is 8 x (2 weight loads, 6 broadcasts, 12 FMAs) on ymm
    registers, and no accumulator is spilled to the stack (module docstring)."""
    from hetero.kernels.conv2d import numba_conv2d_blocked as blocked

    if not blocked.applies():
        pytest.skip("this CPU is not one the blocked kernel runs on (AVX2 and FMA without AVX-512)")
    asm = blocked.tile_asm()
    assert len(re.findall(r"\bvfmadd231ps\s+%ymm", asm)) >= 8 * 2 * blocked.NW
    assert len(re.findall(r"\bvbroadcastss\b", asm)) >= 8 * blocked.NW
    fmas = [m.start() for m in re.finditer(r"\bvfmadd231ps\b", asm)]
    loop = asm[fmas[0] : fmas[-1]]  # the multiply-adds, without the wrapper that numba adds around the kernel
    assert not re.search(r"%ymm\d+, -?\d*\(%rsp\)|\(%rsp\), %ymm", loop), "an accumulator spilled to the stack"
