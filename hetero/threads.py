"""Thread counts for host libraries, so a CPU device uses exactly the cores it was given.

Numba, OpenBLAS (NumPy's and SciPy's copies) and PyTorch each keep their own pool; a device pinned to two cores
must set all of them, or two devices fight over one core.
"""
from __future__ import annotations

from hetero.devices import physical_cores


def set_blas_threads(n: int | None) -> int:
    """Limit every BLAS pool loaded in this process (NumPy's and SciPy's OpenBLAS) to n threads."""
    from threadpoolctl import threadpool_limits

    n = n or physical_cores()
    threadpool_limits(limits=n, user_api="blas")
    return n


def set_numba_threads(n: int | None) -> int:
    import numba

    n = min(n or physical_cores(), numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(n)
    return n
