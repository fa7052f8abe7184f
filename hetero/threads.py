"""Thread counts for host libraries, so a CPU device uses exactly the cores it was given.

Numba, OpenBLAS (NumPy's and SciPy's copies) and PyTorch each keep their own pool; a device pinned to two cores
must set all of them, or two devices fight over one core.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from functools import lru_cache

from hetero.devices import physical_cores


def set_blas_threads(n: int | None) -> int:
    """Limit every BLAS pool loaded in this process (NumPy's and SciPy's OpenBLAS) to n threads.

    Backends call this before every kernel, so the scan for loaded libraries (threadpoolctl reads the process's
    maps, ~1 ms) is done once per set of imported modules, not per call: a BLAS arrives with an import."""
    n = n or physical_cores()
    for lib in _blas_controllers(len(sys.modules)):
        lib.set_num_threads(n)
    return n


@lru_cache(maxsize=1)
def _blas_controllers(n_modules: int) -> tuple:
    from threadpoolctl import ThreadpoolController

    return tuple(lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas")


def set_numba_threads(n: int | None) -> int:
    import numba

    n = min(n or physical_cores(), numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(n)
    return n


@lru_cache(maxsize=1)
def _scipy_openblas():
    """threadpoolctl's controller for SciPy's OpenBLAS (the one Numba's np.dot calls); None if it cannot see it."""
    import scipy.linalg.cython_blas  # noqa: F401  load SciPy's OpenBLAS so threadpoolctl can find it
    from threadpoolctl import ThreadpoolController

    libs = [
        lib
        for lib in ThreadpoolController().lib_controllers
        if lib.internal_api == "openblas" and "scipy.libs" in lib.filepath
    ]
    return libs[0] if libs else None


@contextmanager
def single_threaded_scipy_blas():
    """SciPy's OpenBLAS on 1 thread inside the block, for Numba kernels that call sgemm from each of their own
    threads: those already use every core, and OpenBLAS threads inside them would oversubscribe."""
    blas = _scipy_openblas()
    if blas is None:
        yield
        return
    prev = blas.get_num_threads()
    blas.set_num_threads(1)
    try:
        yield
    finally:
        blas.set_num_threads(prev)


@contextmanager
def one_blas_thread():
    """Every BLAS pool of this process on 1 thread inside the block, for NumPy work on a driver whose devices
    compute on the other cores. After a call on 2 threads, OpenBLAS's idle worker spins for its thread timeout
    (~0.1 s) before it sleeps: after the driver checks a run's outputs against NumPy, that spin would take most of
    a device's core at the start of the next scheduler run."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield
