"""The Python API: hetero.run(workload, backend=..., **pytorch_style_arguments) -> NumPy array."""

from __future__ import annotations

import numpy as np

from hetero.backends import registry
from hetero.errors import BackendUnavailable
from hetero.workloads import get


def run(workload: str, backend: str = "numpy", **arguments) -> np.ndarray:
    """Run one workload on one backend and return its output as a float32 NumPy array, shaped as PyTorch's.

    hetero.run("attention", backend="numba", query=q, key=k, value=v, is_causal=True, enable_gqa=True)
    hetero.run("matmul", backend="numba", input=a, other=b)     # also a=, b=
    hetero.run("conv2d", backend="numba", input=x, weight=w, stride=(2, 1), padding="same", groups=4)
    Raises HeteroError (a ValueError) naming the bad argument wherever PyTorch would raise, and where a backend
    refuses a combination it cannot compute (with its reason).
    """
    wl = get(workload)
    params, inputs, out_shape = wl.call(**arguments)
    be = registry.get(backend)
    if params is None:  # an empty dimension: PyTorch's answer is empty or zeros, on any device
        reason = be.unavailable()
        if reason:
            raise BackendUnavailable(f"backend {backend!r} unavailable: {reason}")
        return np.zeros(out_shape, np.float32)
    kernel = be.prepare(wl.case(params), inputs)
    kernel()
    return kernel.result().reshape(out_shape)


def list_backends() -> list[tuple[str, bool, str]]:
    """Every backend: (name, available, reason when unavailable)."""
    return registry.listing()
