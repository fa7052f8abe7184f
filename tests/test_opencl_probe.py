"""The OpenCL availability probe: a device whose compiler cannot build is unavailable, with the reason and fix.
Needs pyopencl importable, not a working device (the compiler is replaced by one that fails as PoCL 3.0 does
on Zen 5)."""
import pytest

cl = pytest.importorskip("pyopencl", reason="pyopencl not installed")

from hetero import opencl_util as ocl  # noqa: E402


class _Dev:
    name, platform = "pthread-AMD EPYC ", type("P", (), {"name": "Portable Computing Language"})()


class _FailingProgram:
    def __init__(self, ctx, source):
        pass

    def build(self, options):
        raise cl.Error("clBuildProgram failed: BUILD_PROGRAM_FAILURE\nBuild on <dev>:\n\n"
                       "error: unknown target CPU 'generic'\nDevice failed to build the program\n")


def test_compiler_that_cannot_target_the_cpu_makes_the_device_unavailable(monkeypatch):
    monkeypatch.setattr(cl, "Context", lambda devices: None)
    monkeypatch.setattr(cl, "Program", _FailingProgram)
    why = ocl._cannot_build(_Dev())
    assert why.startswith("pthread-AMD EPYC (Portable Computing Language) cannot compile OpenCL kernels here")
    assert "unknown target CPU 'generic'" in why and "PoCL issue #1049" in why and ocl.ENV_DEVICE in why


def test_compiler_that_builds_leaves_the_device_available(monkeypatch):
    monkeypatch.setattr(cl, "Context", lambda devices: None)
    monkeypatch.setattr(cl, "Program", lambda ctx, source: type("B", (), {"build": lambda self, options: self})())
    assert ocl._cannot_build(_Dev()) is None
