"""numpy: the reference, in the case's precision (float32), on the host; NumPy's BLAS does the GEMMs.

This is the baseline bench.run divides by. Its code is the workload's own reference, so any speed it has is
NumPy's and OpenBLAS's, not ours.
"""

from __future__ import annotations

import numpy as np

from hetero.backends.base import ALL, Backend, Device, HostKernel
from hetero.devices import cpu_device
from hetero.threads import set_blas_threads
from hetero.workloads import get
from hetero.workloads.quant import INT8


class NumpyBackend(Backend):
    name = "numpy"
    # int8: the exact integer product (the float64 reference of int8 operands: every sum exact), as int32
    dtypes = {
        w: ("float32", "int8") if w in INT8 else ("float32",)
        for w in ("matmul", "attention", "conv2d", "conv_transpose2d")
    }
    features = {w: ALL for w in dtypes}

    def device(self) -> Device:
        return cpu_device(self.threads)

    def _prepare(self, case, inputs):
        set_blas_threads(self.threads)
        workload = get(case.workload)

        int8 = case.dtype == "int8"

        def fn(out):
            out[...] = workload.reference(case, inputs, np.float64 if int8 else np.float32)

        return HostKernel(fn, np.empty(workload.out_shape(case.p), np.int32 if int8 else np.float32))
