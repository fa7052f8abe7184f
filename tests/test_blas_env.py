"""The BLAS report in results metadata and the note about AVX2 kernels on an AVX-512 CPU (no backend needed)."""

import numpy as np  # noqa: F401  loads NumPy's OpenBLAS, so the report has something to list

from hetero import blas_env

AVX512 = {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl", "fma", "avx2"}


def _blas(arch):
    return [{"library": "libopenblas.so", "api": "openblas", "version": "0.3.31", "architecture": arch, "threads": 2}]


def test_report_lists_numpys_blas():
    libs = blas_env.blas_report()
    assert libs and all({"library", "api", "architecture", "threads"} <= set(b) for b in libs)


def test_note_when_haswell_kernels_run_on_avx512(monkeypatch):
    monkeypatch.setattr(blas_env, "_flags", lambda: AVX512)
    monkeypatch.setattr(blas_env, "blas_report", lambda: _blas("Haswell"))
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    note = blas_env.avx2_on_avx512_note()
    assert "libopenblas.so" in note and "unset OPENBLAS_CORETYPE" in note and "Haswell" in note


def test_no_note_when_avx512_kernels_or_no_avx512(monkeypatch):
    monkeypatch.setattr(blas_env, "_flags", lambda: AVX512)
    monkeypatch.setattr(blas_env, "blas_report", lambda: _blas("SkylakeX"))
    assert blas_env.avx2_on_avx512_note() == ""
    monkeypatch.setattr(blas_env, "_flags", lambda: {"avx2", "fma"})
    monkeypatch.setattr(blas_env, "blas_report", lambda: _blas("Haswell"))
    assert blas_env.avx2_on_avx512_note() == ""
