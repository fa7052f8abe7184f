"""hetero: run GAN- and transformer-style kernels across CPU, GPU, OpenCL and emulated FPGA devices.

import hetero
hetero.list_backends()                    # [(name, available, reason), ...]
out = hetero.run("attention", backend="numba", query=q, key=k, value=v, is_causal=True)
"""

from hetero.api import list_backends, run
from hetero.errors import BackendUnavailable, HeteroError
from hetero.workloads import WORKLOADS

__version__ = "0.1.0"
__all__ = ["run", "list_backends", "HeteroError", "BackendUnavailable", "WORKLOADS", "__version__"]
