"""The workloads, by name. One definition each, shared by every backend."""
from __future__ import annotations

from hetero.errors import choices
from hetero.workloads.attention import Attention
from hetero.workloads.base import DTYPES, Case, Preset, Workload, check
from hetero.workloads.conv2d import Conv2d, ConvTranspose2d
from hetero.workloads.matmul import Matmul

WORKLOADS: dict[str, Workload] = {w.name: w for w in (Matmul(), Attention(), Conv2d(), ConvTranspose2d())}


def get(name: str) -> Workload:
    if name not in WORKLOADS:
        raise choices("workload", name, WORKLOADS)
    return WORKLOADS[name]


__all__ = ["WORKLOADS", "DTYPES", "Case", "Preset", "Workload", "check", "get"]
