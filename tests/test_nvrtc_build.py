"""Every CUDA launcher's text builds with NVRTC, the compiler the cupy backend uses on a GPU, with the options it
uses there (CuPy's RawModule: -arch=sm_90 and --device-as-default-execution-space; the wgmma kernel: its own
NVRTC call for sm_90a), and every kernel it asks for by name is found. NVRTC needs no GPU, so a build failure
shows here instead of costing GPU time. Runs where libnvrtc is found (the nvidia-cuda-nvrtc wheel of the
`cuda-compile` extra, or a CUDA toolkit); else skipped with that reason."""

import ctypes
import glob
import importlib.util
import os

import pytest

from tests.test_cuda_sources import LAUNCHERS


def _libnvrtc() -> str | None:
    spec = importlib.util.find_spec("nvidia")
    roots = list(spec.submodule_search_locations or []) if spec else []
    found = [
        p
        for r in roots
        for d in ("cuda_nvrtc", "cu*")
        for p in sorted(glob.glob(os.path.join(r, d, "lib", "libnvrtc.so*")))
    ]
    found += sorted(glob.glob("/usr/local/cuda*/lib64/libnvrtc.so*"))
    return found[0] if found else None


LIB = _libnvrtc()
pytestmark = pytest.mark.skipif(
    LIB is None, reason="libnvrtc not found: pip install -e '.[cuda-compile]' or install a CUDA toolkit"
)
ARCH = {"attention_sm90": "-arch=sm_90a"}


def _log(lib, prog) -> str:
    size = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    buf = ctypes.create_string_buffer(size.value)
    lib.nvrtcGetProgramLog(prog, buf)
    return buf.value.decode(errors="replace")


@pytest.mark.parametrize("name", sorted(LAUNCHERS))
def test_launcher_text_builds_with_nvrtc(name):
    lib = ctypes.CDLL(LIB)
    source, names = LAUNCHERS[name]
    prog = ctypes.c_void_p()
    assert lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), f"{name}.cu".encode(), 0, None, None) == 0
    try:
        for n in names:
            assert lib.nvrtcAddNameExpression(prog, n.encode()) == 0
        opts = [b"-std=c++17", ARCH.get(name, "-arch=sm_90").encode(), b"--device-as-default-execution-space"]
        rc = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
        assert rc == 0, f"{name}: NVRTC error {rc}:\n{_log(lib, prog)[-3000:]}"
        size = ctypes.c_size_t()
        assert lib.nvrtcGetCUBINSize(prog, ctypes.byref(size)) == 0 and size.value > 0
        for n in names:
            lowered = ctypes.c_char_p()
            assert lib.nvrtcGetLoweredName(prog, n.encode(), ctypes.byref(lowered)) == 0 and lowered.value, n
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))
