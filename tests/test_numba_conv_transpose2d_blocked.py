"""The transposed convolution by stride phases on the channel-blocked FMA kernel
(kernels/conv2d/numba_conv_transpose2d_blocked.py) against a float64 scatter reference, on any CPU: phases with
different tap counts and with none, output padding, dilation, uneven strides and padding, channel counts that are
not whole blocks, several images a tile, and non-finite inputs."""

import numpy as np
import pytest

from conftest import assert_matches_with_non_finite

pytestmark = pytest.mark.usefixtures("needs_numba")

SHAPES = [  # (N, C, H, W, K, R, S, stride, padding, output_padding, dilation)
    (2, 16, 5, 6, 16, 4, 4, (2, 2), (1, 1), (0, 0), (1, 1)),
    (1, 19, 7, 5, 21, 3, 2, (2, 3), (1, 0), (1, 2), (1, 2)),
    (3, 24, 4, 4, 40, 3, 3, (1, 1), (1, 1), (0, 0), (1, 1)),
    (1, 8, 3, 3, 17, 1, 1, (3, 3), (0, 0), (2, 1), (1, 1)),  # phases without a tap: bias only
    (2, 33, 6, 7, 33, 5, 3, (3, 2), (2, 1), (0, 1), (2, 1)),
    (8, 16, 4, 4, 16, 4, 4, (2, 2), (1, 1), (0, 0), (1, 1)),  # small images: several a tile
]


def _reference(x, w, b, st, pad, opad, dil):
    N, C, H, W = x.shape
    _, K, R, S = w.shape
    Ho = (H - 1) * st[0] - 2 * pad[0] + dil[0] * (R - 1) + opad[0] + 1
    Wo = (W - 1) * st[1] - 2 * pad[1] + dil[1] * (S - 1) + opad[1] + 1
    full = np.zeros((N, K, Ho + 2 * pad[0] + st[0] * 2 + dil[0] * R, Wo + 2 * pad[1] + st[1] * 2 + dil[1] * S))
    for r in range(R):
        for s in range(S):
            with np.errstate(invalid="ignore"):  # inf - inf in the sums: NaN, as in the kernel
                part = np.einsum("nchw,ck->nkhw", x.astype(np.float64), w[:, :, r, s].astype(np.float64))
                full[
                    :, :, r * dil[0] : r * dil[0] + st[0] * H : st[0], s * dil[1] : s * dil[1] + st[1] * W : st[1]
                ] += part
    out = full[:, :, pad[0] : pad[0] + Ho, pad[1] : pad[1] + Wo] + b[None, :, None, None]
    return out.astype(np.float32)


def _run(shape, x_fill=None):
    from hetero.kernels.conv2d import numba_conv_transpose2d_blocked as blocked_t

    N, C, H, W, K, R, S, st, pad, opad, dil = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    if x_fill is not None:
        x.reshape(-1)[::53] = x_fill
    w = rng.standard_normal((C, K, R, S)).astype(np.float32)
    b = np.linspace(-1, 1, K).astype(np.float32)
    ref = _reference(x, w, b, st, pad, opad, dil)
    out = np.full(ref.shape, np.nan, np.float32)
    blocked_t.conv_transpose2d(x, w, b, st, pad, dil, out)
    return out, ref


@pytest.mark.parametrize("shape", SHAPES, ids=range(len(SHAPES)))
def test_phases_match_reference(shape):
    out, ref = _run(shape)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


def test_tiles_of_one_row_and_chunks_of_one_block(monkeypatch):
    from hetero.kernels.conv2d import numba_conv2d_blocked as blocked

    monkeypatch.setattr(blocked, "TILE_BYTES", 1)
    monkeypatch.setattr(blocked, "W_CHUNK_BYTES", 1)
    out, ref = _run(SHAPES[4])
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_inputs_stay_non_finite(value):
    out, ref = _run(SHAPES[0], x_fill=value)
    assert_matches_with_non_finite(out, ref)
