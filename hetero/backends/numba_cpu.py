"""numba: hetero's own CPU kernels, compiled by Numba (kernels/*/numba_*.py), on all or `threads` cores."""
from __future__ import annotations

import importlib

import numpy as np

from hetero.backends.base import Backend, Device, HostKernel
from hetero.devices import cpu_device
from hetero.threads import set_blas_threads, set_numba_threads
from hetero.workloads import get
from hetero.workloads.attention import scale_of

# workload -> kernel module; each exposes the kernel function(s) and warmup().
KERNELS = {
    "matmul": "hetero.kernels.matmul.numba_matmul",
    "attention": "hetero.kernels.attention.numba_attention",
    "conv2d": "hetero.kernels.conv2d.numba_conv2d",
    "conv_transpose2d": "hetero.kernels.conv2d.numba_conv2d",
}


class NumbaBackend(Backend):
    name = "numba"
    dtypes = {w: ("float32",) for w in KERNELS}

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
        for module in dict.fromkeys(KERNELS.values()):
            importlib.import_module(module).warmup()

    def _prepare(self, case, inputs):
        self._configure()
        mod = importlib.import_module(KERNELS[case.workload])
        p = case.p
        out = np.empty(get(case.workload).out_shape(p), np.float32)
        if case.workload == "matmul":
            fn = lambda o: mod.matmul(inputs["a"], inputs["b"], o)  # noqa: E731
        elif case.workload == "attention":
            scale = scale_of(case, inputs.get("scale"))
            fn = lambda o: mod.attention(inputs["query"], inputs["key"], inputs["value"], o,  # noqa: E731
                                         scale, bool(p["causal"]))
        elif case.workload == "conv2d":
            st, pad, dil = ((p[k], p[k]) for k in ("stride", "padding", "dilation"))
            fn = lambda o: mod.conv2d(inputs["input"], inputs["weight"], inputs.get("bias"),  # noqa: E731
                                      st, pad, dil, o)
        else:
            st, pad, opad, dil = ((p[k], p[k]) for k in ("stride", "padding", "output_padding", "dilation"))
            fn = lambda o: mod.conv_transpose2d(inputs["input"], inputs["weight"],  # noqa: E731
                                                inputs.get("bias"), st, pad, opad, dil, o)
        return HostKernel(fn, out)
