"""numba: hetero's own CPU kernels, compiled by Numba (kernels/*/numba_*.py), on all or `threads` cores."""

from __future__ import annotations

import importlib

import numpy as np

from hetero.backends.base import ALL, Backend, Device, HostKernel
from hetero.devices import cpu_device
from hetero.threads import set_blas_threads, set_numba_threads
from hetero.workloads import get
from hetero.workloads.attention import scale_of
from hetero.workloads.conv2d import hw

# workload -> kernel module; each exposes the kernel function(s) and warmup().
KERNELS = {
    "matmul": "hetero.kernels.matmul.numba_matmul",
    "attention": "hetero.kernels.attention.numba_attention",
    "conv2d": "hetero.kernels.conv2d.numba_conv2d",
    "conv_transpose2d": "hetero.kernels.conv2d.numba_conv2d",
}


# int8 (int8 operands, exact int32 products; workloads.quant): workload -> kernel module
INT8_KERNELS = {
    "matmul": "hetero.kernels.matmul.numba_int8",
    "conv2d": "hetero.kernels.conv2d.numba_conv2d_int8",
}


class NumbaBackend(Backend):
    name = "numba"
    dtypes = {w: ("float32", "int8") if w in INT8_KERNELS else ("float32",) for w in KERNELS}
    features = {w: ALL for w in KERNELS}

    @classmethod
    def _unavailable(cls):
        try:
            import numba  # noqa: F401
            import scipy.linalg.cython_blas  # noqa: F401  (Numba's np.dot needs SciPy's BLAS)
        except ImportError as exc:
            return f"{exc.name} not installed (pip install numba scipy)"
        return None

    def device(self) -> Device:
        return cpu_device(self.threads)

    def _configure(self):
        import scipy.linalg.cython_blas  # noqa: F401  load SciPy's OpenBLAS before limiting its threads

        set_numba_threads(self.threads)
        set_blas_threads(self.threads)

    def warmup(self) -> None:
        self._configure()
        for module in dict.fromkeys([*KERNELS.values(), *INT8_KERNELS.values(), "hetero.kernels.conv2d.numba_grouped"]):
            importlib.import_module(module).warmup()

    def _prepare(self, case, inputs):
        self._configure()
        p = case.p
        if case.dtype == "int8":
            return self._int8(case, inputs)
        mod = importlib.import_module(KERNELS[case.workload])
        out = np.empty(get(case.workload).out_shape(p), np.float32)
        if case.workload == "matmul":
            fn = lambda o: mod.matmul(inputs["a"], inputs["b"], o)  # noqa: E731
        elif case.workload == "attention":
            fn = self._attention(mod, case, inputs)
        else:
            fn = self._conv(mod, case, inputs)
        return HostKernel(fn, out)

    @staticmethod
    def _int8(case, inputs):
        mod, p = importlib.import_module(INT8_KERNELS[case.workload]), case.p
        out = np.empty(get(case.workload).out_shape(p), np.int32)
        if case.workload == "matmul":
            return HostKernel(lambda o: mod.matmul(inputs["a"], inputs["b"], o), out)
        st, pad, dil = (hw(p, k) for k in ("stride", "padding", "dilation"))
        return HostKernel(lambda o: mod.conv2d(inputs["input"], inputs["weight"], st, pad, dil, p["groups"], o), out)

    @staticmethod
    def _attention(mod, case, inputs):
        scale, mask = scale_of(case, inputs.get("scale")), inputs.get("attn_mask")
        return lambda o: mod.attention(
            inputs["query"], inputs["key"], inputs["value"], o, scale, bool(case.p["causal"]), mask
        )

    @staticmethod
    def _conv(mod, case, inputs):
        p, g = case.p, case.p["groups"]
        x, w, b = inputs["input"], inputs["weight"], inputs.get("bias")
        grouped = importlib.import_module("hetero.kernels.conv2d.numba_grouped")
        st, pad, dil = (hw(p, k) for k in ("stride", "padding", "dilation"))
        if case.workload == "conv2d":
            if g > 1 or grouped.takes_dense(p["C"], p["R"], p["S"], st):
                return lambda o: grouped.conv2d(x, w, b, st, pad, dil, g, o)
            return lambda o: mod.conv2d(x, w, b, st, pad, dil, o)
        opad = hw(p, "output_padding")
        if g > 1:
            return lambda o: grouped.conv_transpose2d(x, w, b, st, pad, opad, dil, g, o)
        return lambda o: mod.conv_transpose2d(x, w, b, st, pad, opad, dil, o)
