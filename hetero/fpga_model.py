"""An analytical time model of a systolic-array GEMM accelerator on an FPGA (after AutoSA's latency model).

Vendor emulators are functional only (Intel: emulated run time cannot estimate FPGA run time), so fpga-emu
computes results for real and takes its time from here. An R x C array of PEs, each V lanes wide, at clock f
does R*C*V multiply-adds per cycle (peak 2*R*C*V*f FLOP/s). For C (M, N) = A (M, K) @ B (K, N) in output
tiles of Tm x Tn (multiples of R and C):

    cycles  = II * ceil(M/Tm) * ceil(N/Tn) * (Tm*Tn*ceil(K/V) / (R*C) + R + C + depth)   # compute + fill/drain
    dram    = (M*K*ceil(N/Tn) + K*N*ceil(M/Tm) + M*N) * bytes      # A re-read per column of tiles, B per row
    kernel  = max(cycles / f, dram / DRAM bandwidth) + launch latency
    total   = kernel + (inputs + outputs) bytes / PCIe bandwidth     # what a host call sees

Convolutions are the im2col GEMM; attention is two GEMMs per head (Q K^T, P V) plus a streaming softmax of
V elements per cycle; causal attention skips output tiles above the diagonal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hetero.errors import choices

MODEL_VERSION = "v1"


@dataclass(frozen=True)
class FpgaPreset:
    name: str
    board: str
    dtype: str  # the array's arithmetic: float32 or int8
    R: int  # PE rows
    C: int  # PE columns
    V: int  # SIMD lanes per PE
    f_mhz: float
    dram_gbps: float
    pcie_gbps: float
    source: str
    published_gflops: float  # the design's published throughput, GFLOP/s (GOP/s for int8)
    published_shape: tuple = (8192, 8192, 8192)  # (M, N, K) the figure is checked at
    published_s: float | None = None  # a published kernel time at published_shape, if any
    Tm_mult: int = 16  # output tile = (R*Tm_mult) x (C*Tn_mult): enough work per PE to hide the pipeline
    Tn_mult: int = 16
    depth: int = 32  # pipeline depth of a PE's multiply-add chain and the I/O modules, cycles
    II: int = 1
    launch_us: float = 20.0

    @property
    def peak_gflops(self) -> float:
        return 2 * self.R * self.C * self.V * self.f_mhz / 1e3

    @property
    def Tm(self) -> int:
        return self.R * self.Tm_mult

    @property
    def Tn(self) -> int:
        return self.C * self.Tn_mult


PRESETS = {
    p.name: p
    for p in (
        # AutoSA (Wang, Guo, Cong, FPGA 2021), Table/Fig. for GEMM on Xilinx Alveo U250: fp32 13x16 PEs x 8 lanes at
        # 300 MHz, ~939 GFLOP/s, measured kernel 2.32 ms for M=1040, N=K=1024. 4 x DDR4-2400 = 76.8 GB/s, PCIe Gen3 x16.
        FpgaPreset(
            "alveo-u250-fp32",
            "Xilinx Alveo U250",
            "float32",
            13,
            16,
            8,
            300,
            76.8,
            12.0,
            "AutoSA (FPGA'21) fp32 GEMM 13x16x8 @ 300 MHz; 2.32 ms at 1040x1024x1024",
            939.0,
            (1040, 1024, 1024),
            2.32e-3,
            Tm_mult=20,
            Tn_mult=16,
        ),
        # AutoSA int8 GEMM on the U250: 24x8 PEs x 64 lanes at 300 MHz, ~7.3 TOPS.
        FpgaPreset(
            "alveo-u250-int8",
            "Xilinx Alveo U250",
            "int8",
            24,
            8,
            64,
            300,
            76.8,
            12.0,
            "AutoSA (FPGA'21) int8 GEMM 24x8x64 @ 300 MHz, ~7.3 TOPS",
            7300.0,
        ),
        # T2SP (Srivastava et al., T2S-Tensor FCCM'19 / T2SP): Intel Arria 10 GX 1150 PAC, fp32 GEMM ~532 GFLOP/s at
        # 215 MHz. The array shape is ours: 10x8x16 = 1280 DSPs' worth of MACs (the chip has 1518 DSPs).
        # 2 x DDR4-2133 = 34 GB/s, PCIe Gen3 x8.
        FpgaPreset(
            "arria10-pac-fp32",
            "Intel Arria 10 GX PAC",
            "float32",
            10,
            8,
            16,
            215,
            34.0,
            6.0,
            "T2SP fp32 GEMM on Arria 10 GX 1150 PAC, ~532 GFLOP/s @ 215 MHz",
            532.0,
        ),
        # T2SP on Intel Stratix 10 SX 2800 (FPGA PAC D5005): fp32 GEMM ~1790 GFLOP/s at 251 MHz using ~3600 DSPs.
        # Array shape ours: 14x16x16 = 3584 MACs. 4 x DDR4-2400 = 76.8 GB/s, PCIe Gen3 x16.
        FpgaPreset(
            "stratix10-d5005-fp32",
            "Intel Stratix 10 D5005",
            "float32",
            14,
            16,
            16,
            251,
            76.8,
            12.0,
            "T2SP fp32 GEMM on Stratix 10 SX 2800 (D5005), ~1790 GFLOP/s @ 251 MHz, ~3600 DSPs",
            1790.0,
        ),
    )
}
DEFAULT = "alveo-u250-fp32"
INT8_PRESET = "alveo-u250-int8"  # the preset named where an int8 case meets a float32 array
INT8_WORKLOADS = ("matmul", "conv2d")  # what the int8 presets' arrays run (fpga-emu)
ENV_PRESET = "HETERO_FPGA_PRESET"


def preset(name: str | None) -> FpgaPreset:
    if name is None:
        name = DEFAULT
    if name not in PRESETS:
        raise choices("FPGA preset", name, PRESETS)
    return PRESETS[name]


@dataclass(frozen=True)
class Estimate:
    compute_s: float
    dram_s: float
    launch_s: float
    pcie_s: float

    @property
    def kernel_s(self) -> float:
        """On-card time: compute or DRAM, whichever binds, plus the launch."""
        return max(self.compute_s, self.dram_s) + self.launch_s

    @property
    def total_s(self) -> float:
        return self.kernel_s + self.pcie_s

    def __add__(self, other: Estimate) -> Estimate:
        return Estimate(
            self.compute_s + other.compute_s,
            self.dram_s + other.dram_s,
            self.launch_s + other.launch_s,
            self.pcie_s + other.pcie_s,
        )


def _itemsize(pr: FpgaPreset) -> int:
    return 1 if pr.dtype == "int8" else 4


def gemm_cycles(pr: FpgaPreset, M: int, N: int, K: int, tiles: int | None = None) -> float:
    """Cycles for C (M, N) += A (M, K) B (K, N); `tiles` overrides the count of (Tm x Tn) output tiles."""
    tiles = math.ceil(M / pr.Tm) * math.ceil(N / pr.Tn) if tiles is None else tiles
    per_tile = pr.Tm * pr.Tn * math.ceil(K / pr.V) / (pr.R * pr.C) + pr.R + pr.C + pr.depth
    return pr.II * tiles * per_tile


def gemm_dram_bytes(pr: FpgaPreset, M: int, N: int, K: int) -> float:
    return float(M * K * math.ceil(N / pr.Tn) + K * N * math.ceil(M / pr.Tm) + M * N) * _itemsize(pr)


def gemm(
    pr: FpgaPreset, M: int, N: int, K: int, batch: int = 1, host_bytes: float | None = None, tiles: int | None = None
) -> Estimate:
    """`batch` GEMMs of (M, N, K) in one launch; host_bytes crosses PCIe (default: A, B in and C out)."""
    cycles = batch * gemm_cycles(pr, M, N, K, tiles)
    dram = batch * gemm_dram_bytes(pr, M, N, K)
    if host_bytes is None:
        host_bytes = batch * (float(M * K + K * N) * _itemsize(pr) + M * N * 4.0)
    return Estimate(
        cycles / (pr.f_mhz * 1e6), dram / (pr.dram_gbps * 1e9), pr.launch_us * 1e-6, host_bytes / (pr.pcie_gbps * 1e9)
    )


def conv2d(pr: FpgaPreset, p: dict, P: int, Q: int) -> Estimate:
    """im2col GEMM per image: (K, C*R*S) @ (C*R*S, P*Q); host moves the input, weight and output once."""
    host = 4.0 * (p["N"] * p["C"] * p["H"] * p["W"] + p["K"] * p["C"] * p["R"] * p["S"] + p["N"] * p["K"] * P * Q)
    return gemm(pr, p["K"], P * Q, p["C"] * p["R"] * p["S"], p["N"], host_bytes=host)


def conv_transpose2d(pr: FpgaPreset, p: dict, Ho: int, Wo: int) -> Estimate:
    """(K*R*S, C) @ (C, H*W) per image, then col2im on the card's output path (free in the model)."""
    host = 4.0 * (p["N"] * p["C"] * p["H"] * p["W"] + p["K"] * p["C"] * p["R"] * p["S"] + p["N"] * p["K"] * Ho * Wo)
    return gemm(pr, p["K"] * p["R"] * p["S"], p["H"] * p["W"], p["C"], p["N"], host_bytes=host)


def _causal_tiles(pr: FpgaPreset, S: int) -> int:
    """Output tiles of the (S, S) score matrix with any element on or below the diagonal."""
    return sum(min(math.ceil(S / pr.Tn), ((mi + 1) * pr.Tm - 1) // pr.Tn + 1) for mi in range(math.ceil(S / pr.Tm)))


def attention(pr: FpgaPreset, p: dict) -> Estimate:
    """Per key/value head (its H/Hkv query heads stacked as R = (H/Hkv)*L score rows): scores = Q K^T (R, S, D),
    streaming softmax over the attended pairs (V elements per cycle), O = P V (R, Dv, S). Host traffic: Q, K, V
    in, O out, and the mask in its given layout (B, 1, L, S) boolean or (1, H, L, S) float."""
    from hetero.workloads.attention import shape_of, visible_pairs  # late: workloads do not need the model

    B, H, Hkv, L, S, D, Dv = shape_of(p)
    bhk, R = B * Hkv, (H // Hkv) * L
    square = p["causal"] and R == S  # causal tile skipping as modelled for the square (one head per key block)
    t1 = _causal_tiles(pr, S) if square else None
    t2 = math.ceil(S / pr.Tm) * math.ceil(Dv / pr.Tn) if square else None  # row tile mi: keys to its last row
    qk = gemm(pr, R, S, D, bhk, host_bytes=0.0, tiles=t1)
    pv_k = S // 2 + 1 if square else S
    pv = gemm(pr, R, Dv, pv_k, bhk, host_bytes=0.0, tiles=t2)
    soft_elems = B * H * visible_pairs(L, S, bool(p["causal"]))
    if square:  # as before: half the square
        soft_elems = B * H * S * S / 2
    softmax = Estimate(soft_elems / pr.V / (pr.f_mhz * 1e6), 0.0, 0.0, 0.0)
    mask = {0: 0.0, 1: 4.0 * B * L * S, 2: 4.0 * H * L * S}[p.get("mask", 0)]
    host_bytes = 4.0 * (B * H * L * D + bhk * S * (D + Dv) + B * H * L * Dv) + mask
    host = Estimate(0.0, 0.0, -pr.launch_us * 1e-6, host_bytes / (pr.pcie_gbps * 1e9))
    return qk + pv + softmax + host  # one launch in all: the second GEMM's launch is taken back


def estimate(pr: FpgaPreset, case) -> Estimate:
    """The model's time for any case of the four workloads (what fpga-emu reports, without running it)."""
    from hetero.workloads import get  # late: workloads do not need the model

    p, wl = case.p, get(case.workload)
    if case.workload == "matmul":
        return gemm(pr, p["M"], p["N"], p["K"])
    if case.workload == "attention":
        return attention(pr, p)
    if case.workload == "conv2d":
        return conv2d(pr, p, *wl.out_hw(p))
    if case.workload == "conv_transpose2d":
        return conv_transpose2d(pr, p, *wl.out_hw(p))
    raise choices("workload", case.workload, ["matmul", "attention", "conv2d", "conv_transpose2d"])
