"""The numba kernels' parallel transpose (kernels/numba_transpose.py): whole 16x16 blocks and both edges."""

import numpy as np
import pytest

from hetero.backends.registry import backend_class


@pytest.mark.parametrize("shape", [(1, 1), (15, 17), (16, 32), (33, 50), (256, 2048)])
def test_transpose_is_a_transpose(shape):
    if backend_class("numba").unavailable():
        pytest.skip(backend_class("numba").unavailable())
    from hetero.kernels.numba_transpose import transpose

    a = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    out = transpose(a)
    assert out.flags.c_contiguous and np.array_equal(out, a.T)
