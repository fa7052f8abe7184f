"""Tests are split by what they need: none (no backend), each available backend (skipped with its reason when
unavailable), and the GPU (tests/gpu, skipped without one)."""

import os

import numpy as np
import pytest

# Fixed thread counts: CI has 2 cores; host backends should not oversubscribe them during tests.
os.environ.setdefault("NUMBA_NUM_THREADS", "2")

from hetero.testing import available_backends  # noqa: E402

BACKENDS = available_backends()


def backend_params(exclude=()):
    """pytest params for every registered backend; an unavailable one is a skip that states why."""
    return [
        pytest.param(name, marks=pytest.mark.skip(reason=f"{name} unavailable: {reason}") if reason else ())
        for name, reason in BACKENDS
        if name not in exclude
    ]


@pytest.fixture
def needs_numba():
    """Skips a test, with the reason, where the numba backend is unavailable."""
    from hetero.backends.registry import backend_class

    if backend_class("numba").unavailable():
        pytest.skip(backend_class("numba").unavailable())


def assert_matches_with_non_finite(out, ref):
    """out equals ref within float32 sums' tolerance, with NaN and inf in the same places."""
    assert np.array_equal(np.isnan(out), np.isnan(ref)) and np.array_equal(np.isinf(out), np.isinf(ref))
    finite = np.isfinite(ref)
    np.testing.assert_allclose(out[finite], ref[finite], rtol=1e-4, atol=1e-4)


def conv2d_loops(x, w, b, st, pad, dil):
    """conv2d by loops over taps in float64 (the workload's reference takes square arguments only)."""
    N, C, H, W = x.shape
    K, _, R, S = w.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    P = (H + 2 * pad[0] - dil[0] * (R - 1) - 1) // st[0] + 1
    Q = (W + 2 * pad[1] - dil[1] * (S - 1) - 1) // st[1] + 1
    out = np.broadcast_to(b.astype(np.float64)[None, :, None, None], (N, K, P, Q)).copy()
    for r in range(R):
        for s in range(S):
            win = xp[
                :,
                :,
                r * dil[0] : r * dil[0] + st[0] * (P - 1) + 1 : st[0],
                s * dil[1] : s * dil[1] + st[1] * (Q - 1) + 1 : st[1],
            ]  # (N, C, P, Q)
            with np.errstate(invalid="ignore"):
                out += np.einsum("ncpq,kc->nkpq", win, w[:, :, r, s].astype(np.float64))
    return out.astype(np.float32)


def routed(monkeypatch, module, x, w):
    """(whether numba_conv2d.conv2d sent (x, w) to module.conv2d, its output) for a stride-1, padding-1 conv."""
    from hetero.kernels.conv2d import numba_conv2d

    calls, real = [], module.conv2d
    monkeypatch.setattr(module, "conv2d", lambda *a: calls.append(a) or real(*a))
    out = np.empty((x.shape[0], w.shape[0]) + x.shape[2:], np.float32)
    numba_conv2d.conv2d(x, w, None, (1, 1), (1, 1), (1, 1), out)
    return bool(calls), out
