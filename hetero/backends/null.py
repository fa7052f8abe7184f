"""null: does no work and reports a fixed time. For scheduler and CLI tests that must not depend on hardware.

Its output is the reference itself, so correctness checks pass; its seconds are HETERO_NULL_SECONDS (default
1 ms), labelled modeled, never measured.
"""

from __future__ import annotations

import os

import numpy as np

from hetero.backends.base import ALL, MODELED, Backend, Device, Kernel
from hetero.workloads import get


class _NullKernel(Kernel):
    timing = MODELED

    def __init__(self, out: np.ndarray, seconds: float):
        self.out, self.seconds = out, seconds

    def __call__(self) -> float:
        return self.seconds

    def result(self) -> np.ndarray:
        return self.out


class NullBackend(Backend):
    name = "null"
    timing = MODELED
    dtypes = {w: ("float32", "float16", "bfloat16") for w in ("matmul", "attention", "conv2d", "conv_transpose2d")}
    features = {w: ALL for w in dtypes}  # it computes nothing, so nothing is computed wrongly

    def device(self) -> Device:
        return Device(name="null device", kind="null", peak_source="none: a test double")

    def _prepare(self, case, inputs):
        out = get(case.workload).reference(case, inputs, np.float32)
        return _NullKernel(out, float(os.environ.get("HETERO_NULL_SECONDS", "0.001")))
