"""The few-channel conv2d kernel (kernels/conv2d/numba_conv2d_rows.py) against the reference, on any CPU (LLVM
lowers its FMAs wherever it runs; it is routed to only on AVX2): output channels that are not whole blocks of 4,
rows whose width is not a whole number of 16-column tiles (the last tile moved back to overlap) or under 16
(8-column tiles), strides, dilation, uneven padding, a 7x7 stem, a layer of 15 channels, and non-finite inputs."""

import re

import numpy as np
import pytest

from conftest import assert_matches_with_non_finite, conv2d_loops, routed

pytestmark = pytest.mark.usefixtures("needs_numba")

SHAPES = [  # conv2d parameters; stride, padding, dilation as (h, w)
    dict(N=2, C=3, H=16, W=40, K=10, R=4, S=4, stride=(2, 4), padding=(1, 0)),  # a wide GAN discriminator's first
    dict(N=1, C=1, H=9, W=9, K=3, R=3, S=3, padding=(1, 1)),  # 9 columns: one 8-column tile and an overlapping one
    dict(N=2, C=5, H=20, W=23, K=7, R=3, S=2, stride=(1, 2), padding=(2, 1), dilation=(2, 1)),
    dict(N=2, C=3, H=30, W=41, K=17, R=7, S=7, stride=(2, 2), padding=(3, 3)),  # a ResNet stem
    dict(N=3, C=15, H=12, W=37, K=4, R=3, S=3, padding=(0, 1)),
]


def _run(p, x_fill=None):
    from hetero.kernels.conv2d import numba_conv2d_rows as rows

    st, pad, dil = (p.get(k, (d, d)) for k, d in (("stride", 1), ("padding", 0), ("dilation", 1)))
    rng = np.random.default_rng(7)
    x = rng.standard_normal((p["N"], p["C"], p["H"], p["W"]), dtype=np.float32)
    w = rng.standard_normal((p["K"], p["C"], p["R"], p["S"]), dtype=np.float32)
    if x_fill is not None:
        x.reshape(-1)[::97] = x_fill
    b = np.linspace(-1, 1, p["K"]).astype(np.float32)
    ref = conv2d_loops(x, w, b, st, pad, dil)
    out = np.full(ref.shape, np.nan, np.float32)
    rows.conv2d(x, w, b, st, pad, dil, out)
    return out, ref


@pytest.mark.parametrize("p", SHAPES, ids=range(len(SHAPES)))
def test_rows_match_reference(p):
    out, ref = _run(p)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_inputs_stay_non_finite(value):
    out, ref = _run(SHAPES[0], x_fill=value)
    assert_matches_with_non_finite(out, ref)


def test_few_channel_conv2d_routes_here_on_avx2(monkeypatch):
    """numba_conv2d sends a 3-channel conv here exactly when `applies` says this CPU should run it."""
    from hetero.kernels.conv2d import numba_conv2d_rows as rows

    taken, out = routed(monkeypatch, rows, np.ones((1, 3, 6, 10), np.float32), np.ones((5, 3, 3, 3), np.float32))
    assert taken == rows.applies()
    assert out[0, 0, 2, 2] == 27 and out[0, 0, 0, 0] == 12  # 3 channels x 9 taps inside, 4 taps at a corner


def test_microkernel_is_fmas_on_registers():
    """On a CPU the kernel applies to, a tap is 2 input loads, 4 broadcasts and 8 FMAs on ymm registers, and no
    accumulator is spilled to the stack (module docstring)."""
    from hetero.kernels.conv2d import numba_conv2d_rows as rows

    if not rows.applies():
        pytest.skip("this CPU is not one the rows kernel runs on (AVX2 and FMA without AVX-512)")
    asm = rows.rows_asm()
    assert len(re.findall(r"\bvfmadd231ps\s+%ymm", asm)) >= rows.KT * rows.VW
    assert len(re.findall(r"\bvbroadcastss\b", asm)) >= rows.KT
    fmas = [m.start() for m in re.finditer(r"\bvfmadd231ps\b", asm)]
    loop = asm[fmas[0] : fmas[-1]]
    assert not re.search(r"%ymm\d+, -?\d*\(%rsp\)|\(%rsp\), %ymm", loop), "an accumulator spilled to the stack"


def test_int8_convolves_exactly(monkeypatch):
    """int8 conv2d on this kernel (numba_conv2d_int8's ROWS, forced here on any CPU), every value -128 in one image:
    equal to the int64 sums. A 15-channel 11x11 kernel (C*R*S past 1024, where float32 sums may round) goes
    elsewhere."""
    from hetero.kernels.conv2d import numba_conv2d_int8
    from hetero.kernels.conv2d import numba_conv2d_rows as rows

    monkeypatch.setattr(rows, "applies", lambda: True)
    calls, real = [], rows.conv2d
    monkeypatch.setattr(rows, "conv2d", lambda *a: calls.append(a) or real(*a))
    rng = np.random.default_rng(3)
    for C, R, taken in ((3, 4, True), (15, 11, False)):
        x = rng.integers(-128, 128, (2, C, 12, 21)).astype(np.int8)
        w = rng.integers(-128, 128, (6, C, R, R)).astype(np.int8)
        x[0], w[:2] = -128, -128
        P, Q = 12 - R + 3, 21 - R + 3
        out = np.empty((2, 6, P, Q), np.int32)
        calls.clear()
        numba_conv2d_int8.conv2d(x, w, (1, 1), (1, 1), (1, 1), 1, out)
        ref = conv2d_loops(x.astype(np.float64), w.astype(np.float64), np.zeros(6), (1, 1), (1, 1), (1, 1))
        assert bool(calls) == taken and np.array_equal(out, np.rint(ref.astype(np.float64)).astype(np.int64))


@pytest.mark.parametrize("sw", [1, 2, 3, 4])
@pytest.mark.parametrize("dtype", [np.float32, np.int8])
def test_phase_split_matches_its_definition(sw, dtype):
    """numba_phases.fill_phases, whose W strides 2 and 4 split 8 columns a step in registers, against its
    docstring's formula: left and right padding, rows shorter and longer than a step, int8 widened."""
    from hetero.kernels.conv2d.numba_phases import fill_phases

    rng = np.random.default_rng(sw)
    for W, pw, ph in ((5, 0, 1), (40, 1, 0), (70, 3, 2)):
        C, H, sh = 2, 9, 2
        x = (rng.standard_normal((C, H, W)) * 50).astype(dtype)
        rows_, cols = (H + 2 * ph) // sh + 1, (W + 2 * pw) // sw + 1
        got = np.zeros((C, sh, sw, rows_, cols), np.float32)
        fill_phases(x, sh, sw, ph, pw, rows_, cols, got.reshape(-1))
        want = np.zeros_like(got)
        xp = np.pad(x.astype(np.float32), ((0, 0), (ph, sh * rows_), (pw, sw * cols)))
        for a in range(sh):
            for b in range(sw):
                want[:, a, b] = xp[:, a : a + sh * rows_ : sh, b : b + sw * cols : sw]
        assert np.array_equal(got, want), (W, pw, ph)
