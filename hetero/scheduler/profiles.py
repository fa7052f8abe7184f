"""Device profiles for the simulator: how long a task kind takes on a device, including devices one does not own.

    measured  the perf model (bench.run results, schedule runs): a (backend, device)'s history, or its FLOP fit
              for sizes never run; clipped below at the roofline where the device's limits are known (a fit
              extrapolated past the device's physical limit is not believed)
    fpga      hetero.fpga_model's kernel time for a preset (modeled), PCIe as the device's transfer link
    roofline  max(FLOPs / peak, bytes / bandwidth) + launch latency, from datasheet peaks (modeled)

A mix names devices with counts: '8xh100,4xu250,1xcpu'. Kinds:
    cpu                         this machine's numba backend (measured), the host roofline where it has no data
    h100, h200, a100            cupy measured on a device of that name where results/ holds a run, else roofline
    u250, arria10, stratix10    fpga_model presets (also any preset's full name, e.g. alveo-u250-int8)
    numba, opencl, numpy, ...   any backend the perf model has measured on this machine
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from hetero import fpga_model as fm
from hetero.errors import HeteroError
from hetero.planning import KNOWN_DEVICES, MEMORY_GBPS
from hetero.scheduler.device import DeviceState
from hetero.workloads import Case, get

FPGA_ALIASES = {"u250": "alveo-u250-fp32", "arria10": "arria10-pac-fp32", "stratix10": "stratix10-d5005-fp32"}
GPU_LAUNCH_S = 5e-6  # a kernel launch, CUDA's order of magnitude
GPU_LINK = (10e-6, 50e9)  # host link: PCIe Gen5 x16, ~50 GB/s achievable, ~10 us per transfer
ITEMSIZE = {"float32": 4, "tf32": 4, "float16": 2, "bfloat16": 2, "int8": 1}


@dataclass
class Profile:
    kind: str  # as the user named it: h100, u250, cpu, numba
    backend: str  # perf-model key
    device: str
    source: str  # how its times are obtained, 'measured ...' or 'modeled ...'
    seconds: Callable[[Case], float | None]
    latency: float = 0.0  # per transfer of a task's inputs to the device
    bandwidth: float = math.inf
    supports: frozenset | None = None

    @property
    def measured(self) -> bool:
        return self.source.startswith("measured")


class ProfileModel:
    """predict(backend, device, case) over profiles, memoised: the simulator asks once per task and device pool."""

    def __init__(self, profiles: list[Profile]):
        self.by_key = {(p.backend, p.device): p for p in profiles}
        self.memo: dict = {}

    def predict(self, backend: str, device: str, case: Case) -> float | None:
        key = (backend, device, case)
        if key not in self.memo:
            self.memo[key] = self.by_key[(backend, device)].seconds(case)
        return self.memo[key]


def roofline(peak_flops: dict, bytes_per_s: float, launch_s: float) -> Callable[[Case], float | None]:
    """peak_flops: dtype -> FLOP/s. None for a dtype with no published peak."""

    def seconds(case: Case) -> float | None:
        peak = peak_flops.get(case.dtype)
        if not peak:
            return None
        wl, p = get(case.workload), case.p
        return max(wl.flops(p) / peak, wl.bytes_moved(p, ITEMSIZE.get(case.dtype, 4)) / bytes_per_s) + launch_s

    return seconds


def measured(model, backend: str, device: str, floor=None) -> Callable[[Case], float | None]:
    def seconds(case: Case) -> float | None:
        t = model.predict(backend, device, case)
        low = floor(case) if floor else None
        return low if t is None else (max(t, low) if low is not None else t)

    return seconds


def _devices_of(model, backend: str, like: str = "") -> list[str]:
    """Device names the perf model has for `backend` (name containing `like`), most entries first."""
    count: dict = {}
    for (bk, dev, _, _), h in model.entries.items():
        if bk == backend and like.lower() in dev.lower() and h.count > 0:
            count[dev] = count.get(dev, 0) + 1
    return sorted(count, key=lambda d: -count[d])


def profile(kind: str, model) -> Profile:
    """The profile of one device kind (see the module docstring)."""
    if kind in KNOWN_DEVICES and kind in MEMORY_GBPS and kind not in FPGA_ALIASES:  # a GPU
        peaks = {dt: tf * 1e12 for dt, tf in KNOWN_DEVICES[kind].items()}
        roof = roofline(peaks, MEMORY_GBPS[kind] * 1e9, GPU_LAUNCH_S)
        seen = _devices_of(model, "cupy", kind)
        if seen:
            return Profile(
                kind,
                "cupy",
                seen[0],
                f"measured: cupy on {seen[0]} (perf model; roofline floor)",
                measured(model, "cupy", seen[0], roof),
                *GPU_LINK,
            )
        return Profile(
            kind,
            "roofline",
            kind,
            f"modeled: roofline, {KNOWN_DEVICES[kind]['float32']} TFLOP/s fp32, {MEMORY_GBPS[kind]:.0f} GB/s",
            roof,
            *GPU_LINK,
        )
    name = FPGA_ALIASES.get(kind, kind)
    if name in fm.PRESETS:
        pr = fm.PRESETS[name]
        dtypes = {"float32"} if pr.dtype == "float32" else {"int8"}
        return Profile(
            kind,
            "fpga-model",
            name,
            f"modeled: fpga_model {fm.MODEL_VERSION} {name}",
            lambda c: fm.estimate(pr, c).kernel_s if c.dtype in dtypes else None,
            pr.launch_us * 1e-6,
            pr.pcie_gbps * 1e9,
        )
    backend = "numba" if kind == "cpu" else kind
    seen = _devices_of(model, backend)
    floor = None
    if backend in ("numba", "numpy", "torch"):
        from hetero.devices import cpu_device

        host = cpu_device()
        if host.peak_gflops and host.mem_gbps:
            floor = roofline({"float32": host.peak_gflops * 1e9}, host.mem_gbps * 1e9, 0.0)
    if seen:
        return Profile(
            kind,
            backend,
            seen[0],
            f"measured: {backend} on {seen[0]} (perf model)",
            measured(model, backend, seen[0], floor),
        )
    if kind == "cpu" and floor:
        return Profile(kind, "roofline", kind, "modeled: roofline of this machine's CPU", floor)
    raise HeteroError(
        f"device kind {kind!r}: no measurements of it and no datasheet; valid: cpu, "
        f"{', '.join(k for k in KNOWN_DEVICES if k not in FPGA_ALIASES)}, {', '.join(FPGA_ALIASES)}, "
        f"an fpga preset ({', '.join(fm.PRESETS)}), or a backend measured under results/"
    )


def parse_mix(text: str) -> list[tuple[int, str]]:
    """'8xh100,4xu250,1xcpu' -> [(8, 'h100'), (4, 'u250'), (1, 'cpu')]; the count is optional."""
    out = []
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        m = re.fullmatch(r"(?:(\d+)\s*[x*]\s*)?([A-Za-z][\w.-]*)", part)
        if not m or (m.group(1) is not None and int(m.group(1)) < 1):
            raise HeteroError(f"--mix {text!r}: {part!r} is not COUNTxKIND, e.g. 8xh100,4xu250,1xcpu")
        out.append((int(m.group(1) or 1), m.group(2).lower()))
    if not out:
        raise HeteroError(f"--mix {text!r} names no device; e.g. 8xh100,4xu250,1xcpu")
    return out


def build(mix: list[tuple[int, str]], model) -> tuple[list[DeviceState], ProfileModel, list[Profile]]:
    """DeviceStates (kind.0, kind.1, ...) and the model the simulator predicts with."""
    profs, states = [], []
    for count, kind in mix:
        pr = profile(kind, model)
        profs.append(pr)
        states += [
            DeviceState(
                f"{kind}.{i}" if count > 1 else kind, pr.backend, pr.device, pr.latency, pr.bandwidth, pr.supports
            )
            for i in range(count)
        ]
    names = [s.name for s in states]
    if len(set(names)) != len(names):
        raise HeteroError("--mix names a device kind twice; give each kind once with its count")
    return states, ProfileModel(profs), profs
