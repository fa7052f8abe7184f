"""Tests are split by what they need: none (no backend), each available backend (skipped with its reason when
unavailable), and the GPU (tests/gpu, skipped without one)."""

import os

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
