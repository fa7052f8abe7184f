"""The OpenCL availability probe: a device whose compiler cannot build is unavailable, with the reason and fix.
Needs pyopencl importable, not a working device (the compiler is replaced by one that fails as PoCL 3.0 does
on a CPU its LLVM does not know)."""

import pytest

cl = pytest.importorskip("pyopencl", reason="pyopencl not installed")

from hetero import opencl_util as ocl  # noqa: E402


class _Dev:
    name, platform = "pthread-AMD EPYC ", type("P", (), {"name": "Portable Computing Language"})()


class _FailingProgram:
    def __init__(self, ctx, source):
        pass

    def build(self, options):
        raise cl.Error(
            "clBuildProgram failed: BUILD_PROGRAM_FAILURE\nBuild on <dev>:\n\n"
            "error: unknown target CPU 'generic'\nDevice failed to build the program\n"
        )


def test_compiler_that_cannot_target_the_cpu_makes_the_device_unavailable(monkeypatch):
    monkeypatch.setattr(cl, "Context", lambda devices: None)
    monkeypatch.setattr(cl, "Program", _FailingProgram)
    why = ocl._probe(_Dev())
    assert why.startswith("pthread-AMD EPYC (Portable Computing Language) cannot compile OpenCL kernels here")
    assert "unknown target CPU 'generic'" in why and "PoCL issue #1049" in why and ocl.ENV_DEVICE in why
    assert "pip install intel-opencl-rt" in why


def test_compiler_that_builds_leaves_the_device_available(monkeypatch):
    monkeypatch.setattr(cl, "Context", lambda devices: None)
    monkeypatch.setattr(cl, "Program", lambda ctx, source: type("B", (), {"build": lambda self, options: self})())
    assert ocl._probe(_Dev()) is None


def test_intel_platforms_build_without_relaxed_math():
    intel = type("D", (), {"platform": type("P", (), {"name": "Intel(R) OpenCL"})()})()
    assert "-cl-fast-relaxed-math" not in ocl.build_options(intel)
    assert "-cl-fast-relaxed-math" in ocl.build_options(_Dev())


def test_pip_installed_driver_is_registered_with_the_icd_loader(tmp_path, monkeypatch):
    prefix, cache = tmp_path / "venv", tmp_path / "cache"
    (prefix / "lib").mkdir(parents=True)
    monkeypatch.delenv("OCL_ICD_VENDORS", raising=False)
    assert ocl.register_drivers(prefix, cache) is None  # no driver: nothing changes
    assert "OCL_ICD_VENDORS" not in __import__("os").environ
    (prefix / "lib" / "libintelocl.so").write_bytes(b"")
    (tmp_path / "system").mkdir()
    (tmp_path / "system" / "nvidia.icd").write_text("libnvidia-opencl.so.1\n")
    monkeypatch.setattr(ocl, "SYSTEM_VENDORS", tmp_path / "system")
    folder = ocl.register_drivers(prefix, cache)
    assert (folder / "libintelocl.icd").read_text() == f"{prefix / 'lib' / 'libintelocl.so'}\n"
    assert (folder / "nvidia.icd").exists()  # the system's drivers stay visible
    assert __import__("os").environ["OCL_ICD_VENDORS"] == str(folder)
    assert ocl.register_drivers(prefix, cache) is None  # the user's (or an earlier) setting wins
