"""hetero.threads: every loaded BLAS gets the thread count, including one loaded after an earlier call."""
import subprocess
import sys

from threadpoolctl import threadpool_info

from hetero.threads import set_blas_threads


def _blas_threads() -> set:
    return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


def test_set_blas_threads_sets_every_blas_each_call():
    assert set_blas_threads(1) == 1
    assert _blas_threads() == {1}
    set_blas_threads(2)
    assert _blas_threads() == {2}
    set_blas_threads(1)
    assert _blas_threads() == {1}


def test_blas_loaded_after_the_first_call_is_limited_too():
    # a fresh interpreter: NumPy's OpenBLAS first, SciPy's (the one Numba's np.dot calls) imported afterwards
    code = ("import numpy; from hetero.threads import set_blas_threads; set_blas_threads(1);"
            "import scipy.linalg.cython_blas; set_blas_threads(1);"
            "from threadpoolctl import threadpool_info;"
            "libs = [i for i in threadpool_info() if i['user_api'] == 'blas'];"
            "assert len(libs) >= 2 and {i['num_threads'] for i in libs} == {1}, libs")
    subprocess.run([sys.executable, "-c", code], check=True)
