"""The numba backend's own float32 GEMM (kernels/matmul/numba_sgemm.py) against float64 products: rows past the last
whole tile of 6, columns past the last panel of 16, K longer than a chunk (KC), empty dimensions, batches, and NaN
and inf where the reference has them. It runs on any CPU LLVM targets; the backend routes to it on AVX2 CPUs
without AVX-512 (numba_fma_tile.applies)."""

import numpy as np
import pytest

from conftest import assert_matches_with_non_finite

pytestmark = pytest.mark.usefixtures("needs_numba")

SHAPES = [(7, 5, 3), (1, 1, 1), (12, 300, 32), (13, 4100, 17), (100, 64, 250), (6, 7, 16), (5, 9, 40), (0, 4, 5)]


@pytest.mark.parametrize("M, K, N", SHAPES)
@pytest.mark.parametrize("batch", [0, 3])
def test_gemm_matches_float64_product(M, K, N, batch):
    from hetero.kernels.matmul import numba_sgemm

    rng = np.random.default_rng(M * K + N)
    lead = (batch,) if batch else ()
    a = rng.standard_normal((*lead, M, K), dtype=np.float32)
    b = rng.standard_normal((*lead, K, N), dtype=np.float32)
    out = np.full((*lead, M, N), np.nan, np.float32)
    numba_sgemm.gemm(a, b, out)
    np.testing.assert_allclose(out, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("K", [0, 5])
def test_empty_dimensions_give_torchs_result(K):
    """No columns of A (K = 0): every entry is an empty sum, 0; no rows or columns of C: nothing written."""
    from hetero.kernels.matmul import numba_sgemm

    out = np.full((4, 3), np.nan, np.float32)
    numba_sgemm.gemm(np.ones((4, K), np.float32), np.ones((K, 3), np.float32), out)
    assert np.array_equal(out, np.full((4, 3), K, np.float32))
    numba_sgemm.gemm(np.ones((0, K), np.float32), np.ones((K, 3), np.float32), np.empty((0, 3), np.float32))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_stay_non_finite(value):
    from hetero.kernels.matmul import numba_sgemm

    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((13, 37), dtype=np.float32), rng.standard_normal((37, 21), dtype=np.float32)
    a[3, 5], b[7, 20] = value, value
    out = np.empty((13, 21), np.float32)
    numba_sgemm.gemm(a, b, out)
    with np.errstate(invalid="ignore"):
        assert_matches_with_non_finite(out, (a.astype(np.float64) @ b).astype(np.float32))


def test_numba_matmul_routes_here_where_the_tile_applies(monkeypatch):
    from hetero.kernels.matmul import numba_matmul, numba_sgemm

    calls = []
    monkeypatch.setattr(numba_sgemm, "gemm", lambda *args: calls.append(args))
    numba_matmul.matmul(np.ones((2, 3), np.float32), np.ones((3, 4), np.float32), np.empty((2, 4), np.float32))
    assert bool(calls) == numba_sgemm.applies()
