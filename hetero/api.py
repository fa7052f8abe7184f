"""The Python API: hetero.run(workload, backend=..., **pytorch_style_arguments) -> NumPy array."""
from __future__ import annotations

import numpy as np

from hetero.backends import registry
from hetero.workloads import get


def run(workload: str, backend: str = "numpy", **arguments) -> np.ndarray:
    """Run one workload on one backend and return its output as a float32 NumPy array.

    hetero.run("attention", backend="numba", query=q, key=k, value=v, is_causal=True)
    hetero.run("matmul", backend="numba", a=a, b=b)
    hetero.run("conv2d", backend="numba", input=x, weight=w, stride=2, padding=1)
    Raises HeteroError (a ValueError) naming the bad argument for unknown names or mismatched arrays.
    """
    wl = get(workload)
    params, inputs = wl.from_arrays(**arguments)
    case = wl.case(params)
    kernel = registry.get(backend).prepare(case, inputs)
    kernel()
    return kernel.result()


def list_backends() -> list[tuple[str, bool, str]]:
    """Every backend: (name, available, reason when unavailable)."""
    return registry.listing()
