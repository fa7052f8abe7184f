"""What BLAS every library runs, and a note when it leaves the CPU's AVX-512 unused.

OpenBLAS's DYNAMIC_ARCH builds (NumPy's and SciPy's wheels) choose kernels by CPU, unless OPENBLAS_CORETYPE
names a family. On an AVX-512 CPU, OPENBLAS_CORETYPE=Haswell (which a sandbox may set) makes it run its AVX2
kernels, about half as fast as the SkylakeX (AVX-512) ones it would pick itself, which would halve every GEMM
figure without saying so. So results record which kernels ran, and bench.run says when AVX-512 sits idle.
"""

from __future__ import annotations

import os

# AVX-512 subsets OpenBLAS's SkylakeX kernels use.
_SKYLAKEX_FLAGS = {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}


def _flags() -> set:
    from hetero.devices import _cpuinfo  # the one /proc/cpuinfo reader

    return set(_cpuinfo().get("flags", "").split())


def blas_report() -> list[dict]:
    """Every BLAS loaded in this process: library file, implementation, kernel architecture, threads."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [
        {
            "library": os.path.basename(i.get("filepath", "")),
            "api": i.get("internal_api"),
            "version": i.get("version"),
            "architecture": i.get("architecture"),
            "threads": i.get("num_threads"),
        }
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    ]


def avx2_on_avx512_note() -> str:
    """A note when a loaded OpenBLAS runs its Haswell (AVX2) kernels on a CPU with AVX-512, else ''."""
    if not _SKYLAKEX_FLAGS <= _flags():
        return ""
    slow = sorted({b["library"] for b in blas_report() if b["api"] == "openblas" and b["architecture"] == "Haswell"})
    if not slow:
        return ""
    fix = (
        "unset OPENBLAS_CORETYPE (it is set to " + os.environ["OPENBLAS_CORETYPE"] + ") or set it to SkylakeX"
        if "OPENBLAS_CORETYPE" in os.environ
        else "export OPENBLAS_CORETYPE=SkylakeX"
    )
    return (
        f"note: OpenBLAS ({', '.join(slow)}) runs its Haswell (AVX2) kernels on this AVX-512 CPU: NumPy and "
        f"the numba backend's BLAS blocks reach about half the CPU's peak; {fix} to use AVX-512"
    )
