"""The workloads, by name. One definition each, shared by every backend."""

from __future__ import annotations

from hetero.workloads.attention import Attention
from hetero.workloads.base import DTYPES, WORKLOADS, Case, Preset, Workload, check, get
from hetero.workloads.conv2d import Conv2d, ConvTranspose2d
from hetero.workloads.matmul import Matmul

WORKLOADS.update({w.name: w for w in (Matmul(), Attention(), Conv2d(), ConvTranspose2d())})

__all__ = ["WORKLOADS", "DTYPES", "Case", "Preset", "Workload", "check", "get"]
