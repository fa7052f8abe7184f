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


class NumpyBackend(Backend):
    name = "numpy"
    dtypes = {w: ("float32",) for w in ("matmul", "attention", "conv2d", "conv_transpose2d")}
    features = {w: ALL for w in dtypes}

    def device(self) -> Device:
        return cpu_device(self.threads)

    def _prepare(self, case, inputs):
        set_blas_threads(self.threads)
        workload = get(case.workload)

        def fn(out):
            out[...] = workload.reference(case, inputs, np.float32)

        return HostKernel(fn, np.empty(workload.out_shape(case.p), np.float32))
