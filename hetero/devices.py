"""What a backend runs on (Device), and the host CPU's description: name, cores, and a peak fp32 FLOP/s that says
how it was obtained.

peak = cores x FMA pipes x fp32 lanes per vector x 2 FLOP per FMA x clock. The clock is the one measured under
load where this project has measured it (../shared/REFERENCES.md); otherwise HETERO_CPU_GHZ if set; otherwise
/proc/cpuinfo's current MHz, which on VMs is often the base clock and so understates the peak.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from functools import lru_cache

import psutil

# (vendor, family, model) -> (GHz, source): the all-core clock under an FMA load, the typical value of repeated
# measurements (python -m bench.clock). Add a row when you measure a machine; the source lands in every result row.
MEASURED_CLOCKS = {
    ("AuthenticAMD", 25, 1): (3.2, "measured under load with every core busy"),
    ("AuthenticAMD", 26, 2): (3.5, "measured with an all-core AVX-512 FMA loop"),
    ("AuthenticAMD", 25, 17): (3.5, "measured by python -m bench.clock, every core busy"),
    # where an all-core 512-bit FMA loop runs below the scalar probe's clock, the entry is the 512-bit loop's: the
    # peak counts 512-bit FMAs
    ("GenuineIntel", 6, 167): (3.3, "measured with an all-core AVX-512 FMA loop"),
}
# (vendor, family, model) -> memory GB/s with every core streaming (STREAM triad, three streams counted), for
# rooflines: the middle of the measured range, since a VM's bandwidth varies from run to run.
MEASURED_BANDWIDTH = {
    ("AuthenticAMD", 25, 1): 35.0,
    ("AuthenticAMD", 26, 2): 33.0,
    ("AuthenticAMD", 25, 17): 32.0,
    ("GenuineIntel", 6, 167): 30.0,
}


@dataclass(frozen=True)
class Device:
    """What a backend runs on. peak_gflops is fp32 FLOP/s / 1e9; peak_source says how it was obtained."""

    name: str
    kind: str  # cpu | gpu | opencl-cpu | opencl-gpu | fpga | ...
    cores: int | None = None  # CPU cores, GPU SMs, OpenCL compute units, FPGA PEs
    peak_gflops: float | None = None
    mem_gbps: float | None = None
    peak_source: str = "unknown"
    peak_by_dtype: dict | None = None  # e.g. {"float16": 989e3, "tf32": 495e3} GFLOP/s where units differ

    def peak_for(self, dtype: str) -> float | None:
        return (self.peak_by_dtype or {}).get(dtype, self.peak_gflops)


@lru_cache(maxsize=1)
def _cpuinfo() -> dict:
    info: dict = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key and key not in info:
                    info[key] = value.strip()
                if not line.strip() and info:
                    break  # the first processor's block is enough
    except OSError:
        pass
    return info


def cpu_name() -> str:
    """The CPU's model name; a generic one (a VM's "AMD EPYC", with no model number) gets its family and model, so
    two CPU generations sold under one name are different devices in result tables and in the scheduler's perf
    model."""
    info = _cpuinfo()
    name = info.get("model name") or platform.processor() or platform.machine()
    key = cpu_key()
    if not any(c.isdigit() for c in name) and key and key[1] >= 0:
        name += f" family {key[1]} model {key[2]}"
    return name


def physical_cores() -> int:
    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def cpu_key() -> tuple | None:
    info = _cpuinfo()
    try:
        return info.get("vendor_id"), int(info.get("cpu family", -1)), int(info.get("model", -1))
    except ValueError:
        return None


def _clock_ghz() -> tuple[float | None, str]:
    info = _cpuinfo()
    if os.environ.get("HETERO_CPU_GHZ"):
        return float(os.environ["HETERO_CPU_GHZ"]), "HETERO_CPU_GHZ"
    key = cpu_key()
    if key in MEASURED_CLOCKS:
        return MEASURED_CLOCKS[key]
    if info.get("cpu MHz"):
        return float(info["cpu MHz"]) / 1000, "/proc/cpuinfo current clock (may understate turbo)"
    return None, "clock unknown"


def fp32_lanes() -> tuple[int, int]:
    """(lanes per vector, FMA pipes) from the ISA flags: AVX-512 16, AVX2 8, else SSE 4; 2 pipes on x86, except
    AMD family 25 with AVX-512, which runs each 512-bit FMA on its two 256-bit pipes: 1 a cycle."""
    flags = set(_cpuinfo().get("flags", "").split())
    if "avx512f" in flags:
        key = cpu_key()
        return (16, 1) if key and key[:2] == ("AuthenticAMD", 25) else (16, 2)
    if "avx2" in flags and "fma" in flags:
        return 8, 2
    return 4, 2


def fp32_peak_gflops(cores: int, ghz: float) -> float:
    """cores x FMA pipes x fp32 lanes x 2 FLOP x GHz (the module docstring's formula)."""
    lanes, pipes = fp32_lanes()
    return cores * pipes * lanes * 2 * ghz


AMX_INT8_MACS_PER_CYCLE = 1024  # a core's TDPBSSD: a 16 x 16 x 64 tile product every 16 cycles


def int8_per_fp32() -> tuple[float, str]:
    """int8 ops per fp32 FLOP of the same core: AMX's tile unit does 1024 multiply-adds a cycle, against the
    pipes x lanes FMAs of fp32; VNNI's VPDPBUSD does 4 multiply-adds per int32 lane where an FMA does 1 per fp32
    lane (4x); AVX2's VPMADDWD 2 per lane on int16 pairs (2x); else 1."""
    flags = set(_cpuinfo().get("flags", "").split())
    if "amx_int8" in flags:
        lanes, pipes = fp32_lanes()
        ratio = AMX_INT8_MACS_PER_CYCLE / (lanes * pipes)
        return ratio, f"AMX TDPBSSD: {AMX_INT8_MACS_PER_CYCLE} int8 multiply-adds a cycle per core"
    if "avx512_vnni" in flags:
        return 4.0, "AVX-512 VNNI: 4 int8 multiply-adds per int32 lane"
    if "avx2" in flags:
        return 2.0, "AVX2 VPMADDWD: 2 int16 multiply-adds per int32 lane"
    return 1.0, "no int8 dot-product instructions"


def cpu_device(threads: int | None = None, label: str = "cpu") -> Device:
    cores = threads or physical_cores()
    ghz, clock_source = _clock_ghz()
    lanes, pipes = fp32_lanes()
    peak = fp32_peak_gflops(cores, ghz) if ghz else None
    ratio, why = int8_per_fp32()
    source = (
        (
            f"estimated: {cores} cores x {pipes} FMA pipes x {lanes} fp32 lanes x 2 FLOP x {ghz:.2f} GHz "
            f"({clock_source}); int8 {ratio:g}x that ({why})"
        )
        if ghz
        else "unknown: clock not found"
    )
    return Device(
        name=f"{cpu_name()} ({cores} cores)",
        kind=label,
        cores=cores,
        peak_gflops=peak,
        mem_gbps=MEASURED_BANDWIDTH.get(cpu_key()),
        peak_source=source,
        peak_by_dtype={"int8": peak * ratio} if peak else None,
    )
