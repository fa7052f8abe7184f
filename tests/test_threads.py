"""hetero.threads: every loaded BLAS gets the thread count, including one loaded after an earlier call."""

import subprocess
import sys

from threadpoolctl import threadpool_info

from hetero.threads import one_blas_thread, set_blas_threads


def _blas_threads() -> set:
    return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


def test_set_blas_threads_sets_every_blas_each_call():
    assert set_blas_threads(1) == 1
    assert _blas_threads() == {1}
    set_blas_threads(2)
    assert _blas_threads() == {2}
    set_blas_threads(1)
    assert _blas_threads() == {1}


def test_one_blas_thread_limits_every_blas_inside_and_restores_after():
    """The scheduler's driver checks outputs inside it, so no idle OpenBLAS worker spins on a device's core."""
    set_blas_threads(2)
    with one_blas_thread():
        assert _blas_threads() == {1}
    assert _blas_threads() == {2}
    set_blas_threads(1)


def test_blas_loaded_after_the_first_call_is_limited_too():
    # a fresh interpreter: NumPy's OpenBLAS first, SciPy's (the one Numba's np.dot calls) imported afterwards
    code = (
        "import numpy; from hetero.threads import set_blas_threads; set_blas_threads(1);"
        "import scipy.linalg.cython_blas; set_blas_threads(1);"
        "from threadpoolctl import threadpool_info;"
        "libs = [i for i in threadpool_info() if i['user_api'] == 'blas'];"
        "assert len(libs) >= 2 and {i['num_threads'] for i in libs} == {1}, libs"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_device_actor_computes_on_a_lower_priority_thread():
    """Ray's threads in the actor, the driver and the raylet move outputs while the device computes: on a machine
    whose every core computes they must not wait for the compute's time slice (actors.COMPUTE_NICE)."""
    import os

    from hetero.scheduler.actors import COMPUTE_NICE, DeviceActor

    actor = DeviceActor("numpy", (), None, None)
    here = os.getpriority(os.PRIO_PROCESS, 0)
    there = actor.compute.submit(os.getpriority, os.PRIO_PROCESS, 0).result()
    assert there == min(19, here + COMPUTE_NICE)
    assert os.getpriority(os.PRIO_PROCESS, 0) == here  # only the compute thread is lowered


def test_numba_kernels_release_the_gil():
    """While a numba kernel runs, the actor's other thread must be able to store the previous task's output (it
    needs the GIL): a Python thread keeps ticking through each kernel call; with the GIL held it would stall for
    the whole call (74 ms late behind a 67 ms kernel in a Ray actor, before nogil)."""
    import numba
    import numpy as np

    from hetero.kernels.attention.numba_attention import attention
    from hetero.kernels.conv2d.numba_conv2d import conv2d, conv_transpose2d
    from hetero.kernels.matmul.numba_matmul import matmul

    a = np.ones((1024, 1024), np.float32)
    q = np.ones((1, 4, 1024, 64), np.float32)
    x, w = np.ones((16, 64, 32, 32), np.float32), np.ones((64, 64, 3, 3), np.float32)
    out = np.empty((16, 64, 32, 32), np.float32)
    calls = {
        "matmul": lambda: matmul(a, a, np.empty_like(a)),
        "attention": lambda: attention(q, q, q, np.empty_like(q), 0.125, False),
        "conv2d": lambda: conv2d(x, w, None, (1, 1), (1, 1), (1, 1), out),
        "conv_transpose2d": lambda: conv_transpose2d(x, w, None, (1, 1), (1, 1), (0, 0), (1, 1), out),
    }
    # one kernel thread, so that a core stays free for the ticker: on 2 cores a 2-thread kernel can keep the OS
    # from running it for most of a call (a fresh clone's run: no tick for 56.5 of 70.9 ms), which is not the GIL
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        _tick_through(calls)
    finally:
        numba.set_num_threads(threads)


def _tick_through(calls: dict) -> None:
    import threading
    import time

    for name, call in calls.items():
        call()  # compiled (or loaded from the cache) first
        done, ticks = threading.Event(), []

        def tick(done, ticks):
            while not done.is_set():
                ticks.append(time.perf_counter())

        ticker = threading.Thread(target=tick, args=(done, ticks))
        ticker.start()
        time.sleep(0.01)
        t0 = time.perf_counter()
        call()
        t1 = time.perf_counter()
        done.set()
        ticker.join()
        inside = [t0] + [t for t in ticks if t0 < t < t1] + [t1]
        stall = max(b - a for a, b in zip(inside, inside[1:]))
        took = t1 - t0
        assert stall < 0.5 * took, f"{name} held the GIL: no tick for {stall * 1e3:.1f} of {took * 1e3:.1f} ms"
