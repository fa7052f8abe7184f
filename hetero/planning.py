"""Capacity planning: how many devices to train a model in a given time, or to serve a given load.

Cost accounting (Kaplan et al. 2020; Chinchilla): training costs about 6*N FLOPs per token (forward 2N, backward
4N) and inference about 2*N per generated token, N = parameters. Achieved FLOP/s = peak x utilization (MFU).
All figures here are *modeled* from those formulas; the utilization is the user's or one this project measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hetero.errors import HeteroError, choices

# Dense peak TFLOP/s by dtype, from vendor datasheets (SXM parts, no sparsity). FPGA rows: the published designs
# that hetero's fpga-emu presets reproduce (../shared/REFERENCES.md); int8 in TOPS.
KNOWN_DEVICES: dict[str, dict[str, float]] = {
    "a100": {"bfloat16": 312.0, "float16": 312.0, "tf32": 156.0, "float32": 19.5},
    "h100": {"bfloat16": 989.0, "float16": 989.0, "tf32": 495.0, "float32": 67.0},
    "h200": {"bfloat16": 989.0, "float16": 989.0, "tf32": 495.0, "float32": 67.0},
    "u250": {"float32": 0.939, "int8": 7.3},
    "arria10": {"float32": 0.532},
    "stratix10": {"float32": 1.79},
}
SOURCES = {
    "a100": "NVIDIA A100 datasheet (SXM, dense)",
    "h100": "NVIDIA H100 SXM datasheet (dense)",
    "h200": "NVIDIA H200 SXM datasheet (dense; same tensor cores as H100)",
    "u250": "AutoSA on Alveo U250: fp32 13x16x8 PEs at 300 MHz; int8 24x8x64 PEs",
    "arria10": "T2SP fp32 GEMM on Arria 10 GX 1150 PAC at 215 MHz",
    "stratix10": "T2SP fp32 GEMM on Stratix 10 SX 2800 (D5005) at 251 MHz",
}
# Memory bandwidth GB/s (datasheets; FPGA: the boards' DDR4, as in fpga_model's presets), for roofline estimates.
MEMORY_GBPS = {"a100": 2039.0, "h100": 3350.0, "h200": 4800.0, "u250": 76.8, "arria10": 34.0, "stratix10": 76.8}
SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class Plan:
    devices: int
    required_flops: float  # FLOP/s needed (serve) or total FLOPs (train)
    per_device_flops: float  # achieved FLOP/s per device = peak * utilization
    utilization: float
    detail: str


def device_peak(device: str, dtype: str) -> float:
    """Peak FLOP/s of a known device in a dtype."""
    if device not in KNOWN_DEVICES:
        raise choices("device", device, KNOWN_DEVICES)
    peaks = KNOWN_DEVICES[device]
    if dtype not in peaks:
        raise HeteroError(f"{device} has no published {dtype} peak; known: {', '.join(peaks)}")
    return peaks[dtype] * 1e12


def _check_positive(**values) -> None:
    for name, v in values.items():
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise HeteroError(f"{name}={v!r} must be a positive number")


def plan_training(params: float, tokens: float, seconds: float, peak: float, utilization: float) -> Plan:
    """Devices = 6*N*T / (peak * utilization * seconds), rounded up."""
    _check_positive(params=params, tokens=tokens, seconds=seconds, peak=peak)
    if not 0 < utilization <= 1:
        raise HeteroError(f"utilization={utilization} must be in (0, 1]")
    total = 6.0 * params * tokens
    per_device = peak * utilization
    n = math.ceil(total / (per_device * seconds))
    return Plan(
        n,
        total,
        per_device,
        utilization,
        f"6 x {params:.3g} params x {tokens:.3g} tokens = {total:.3g} FLOP over {seconds:.3g} s",
    )


def plan_serving(
    params: float,
    users: float,
    requests_per_user: float,
    period: str,
    words_per_answer: float,
    tokens_per_word: float,
    peak: float,
    utilization: float,
) -> Plan:
    """Devices = 2*N * tokens/s / (peak * utilization), tokens/s = users*requests*words*tokens_per_word/period."""
    _check_positive(
        params=params,
        users=users,
        requests_per_user=requests_per_user,
        words_per_answer=words_per_answer,
        tokens_per_word=tokens_per_word,
        peak=peak,
    )
    if period not in SECONDS:
        raise choices("period", period, SECONDS)
    if not 0 < utilization <= 1:
        raise HeteroError(f"utilization={utilization} must be in (0, 1]")
    tokens_per_s = users * requests_per_user * words_per_answer * tokens_per_word / SECONDS[period]
    need = 2.0 * params * tokens_per_s
    per_device = peak * utilization
    return Plan(
        max(1, math.ceil(need / per_device)),
        need,
        per_device,
        utilization,
        f"{tokens_per_s:.3g} tokens/s x 2 x {params:.3g} params = {need:.3g} FLOP/s",
    )


def measured_utilization(results_dir, device: str, dtype: str) -> tuple[float, str]:
    """The best fraction of peak that one of hetero's own (non-peer) backends reached on matmul, on a device
    whose name contains `device`, in `dtype`, over every results/*/bench.csv. GEMM dominates training and
    serving cost, so matmul's utilization is the one to plan with."""
    from pathlib import Path

    from hetero.results import read_rows

    best, where, at = 0.0, "", ""
    for path in sorted(Path(results_dir).glob("*/bench.csv")):
        df = read_rows(path)  # a corrupt file is an error: a "measured" figure must not rest on it
        if "pct_peak" not in df.columns:
            continue
        rows = df[
            (df.workload == "matmul")
            & (df.status == "ok")
            & (df.dtype == dtype)
            & (~df.peer.astype(bool))
            & df.device.str.lower().str.contains(device.lower(), regex=False)
        ]
        if len(rows) and rows.pct_peak.max() / 100 > best:
            top = rows.loc[rows.pct_peak.idxmax()]
            best, where = top.pct_peak / 100, f"{path} ({top.backend} {top.shape}, measured)"
            at = f"{path}: row {rows.pct_peak.idxmax() + 1}, column pct_peak"
    if best <= 0:
        raise HeteroError(
            f"no measured {dtype} matmul for a device named like {device!r} under {results_dir}; "
            "give --utilization as a number, e.g. 0.4"
        )
    if best > 1:  # above the device's stated peak: the peak or the measurement is wrong, not 100%
        raise HeteroError(
            f"{at}: {100 * best:g} is above 100% of the device's stated peak; fix the run's "
            "peak_gflops or give --utilization as a number, e.g. 0.4"
        )
    return best, where
