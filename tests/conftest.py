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
