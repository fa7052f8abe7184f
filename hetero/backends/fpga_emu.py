"""fpga-emu: an FPGA systolic-array accelerator, emulated. Results are computed for real by FPGA-style OpenCL
kernels (kernels/*/fpga_*.py: a systolic GEMM, convolutions through im2col/col2im, attention as two GEMMs
around a streaming softmax) on any OpenCL device; time comes from hetero/fpga_model.py, never from the
emulation's clock, which is kept apart as kernel.emu_wall_s.

The accelerator is a preset (fpga_model.PRESETS), chosen by the `device` argument (bench.run --fpga-preset)
or $HETERO_FPGA_PRESET; the emulation runs on $HETERO_OPENCL_DEVICE (default: the first OpenCL device).
"""

from __future__ import annotations

import importlib
import os
import time

from hetero import fpga_model as fm
from hetero import opencl_util as ocl
from hetero.backends.base import ALL, MODELED, Backend, Device, Kernel

KERNELS = {
    "matmul": "hetero.kernels.matmul.fpga_matmul",
    "attention": "hetero.kernels.attention.fpga_attention",
    "conv2d": "hetero.kernels.conv2d.fpga_conv2d",
    "conv_transpose2d": "hetero.kernels.conv2d.fpga_conv2d",
}


class FpgaKernel(Kernel):
    timing = MODELED

    def __init__(self, rt, enqueue, out_buf, shape, estimate: fm.Estimate, out_dtype: str = "float32"):
        self.rt, self.enqueue, self.out_buf, self.shape, self.estimate = rt, enqueue, out_buf, shape, estimate
        self.out_dtype = out_dtype
        self.transfer_s = estimate.pcie_s
        self.emu_wall_s = None

    def __call__(self) -> float:
        """Run the emulation (for the result) and return the modeled seconds of one host call."""
        self.run()
        return self.estimate.total_s

    def run(self) -> None:
        t0 = time.perf_counter()
        self.enqueue()[-1].wait()
        self.emu_wall_s = time.perf_counter() - t0

    def result(self):
        import numpy as np

        return self.rt.read(np.empty(self.shape, self.out_dtype), self.out_buf)


class FpgaEmuBackend(Backend):
    name = "fpga-emu"
    timing = MODELED

    @classmethod
    def _unavailable(cls):
        return ocl.unavailable()

    @property
    def preset(self) -> fm.FpgaPreset:
        return fm.preset(self.device_choice or os.environ.get(fm.ENV_PRESET) or None)

    # What the kernels do beyond the plain layout; the rest is refused with its reason (Backend.unsupported).
    features = {
        "matmul": frozenset({"batch"}),
        "conv2d": frozenset({"rect", "groups"}),
        "conv_transpose2d": frozenset({"rect", "groups"}),
        "attention": ALL,
    }

    @property
    def dtypes(self):
        if self.preset.dtype == "int8":  # an int8 array: the int8 workloads (exact int32 products; workloads.quant)
            return {w: ("int8",) for w in fm.INT8_WORKLOADS}
        return {w: ("float32",) for w in KERNELS}

    def unsupported(self, case):
        """Backend.unsupported, naming the preset that runs int8 where this one cannot."""
        reason = super().unsupported(case)
        if reason and case.dtype == "int8" and self.preset.dtype != "int8" and case.workload in fm.INT8_WORKLOADS:
            reason += f" with preset {self.preset.name}; an int8 preset runs it (--fpga-preset {fm.INT8_PRESET})"
        return reason

    def device(self) -> Device:
        pr = self.preset
        unit = "GOP/s int8" if pr.dtype == "int8" else "GFLOP/s fp32"
        return Device(
            name=f"fpga-emu:{pr.name} (model {fm.MODEL_VERSION})",
            kind="fpga",
            cores=pr.R * pr.C,
            peak_gflops=pr.peak_gflops,
            mem_gbps=pr.dram_gbps,
            peak_by_dtype={pr.dtype: pr.peak_gflops},
            peak_source=f"fpga_model {fm.MODEL_VERSION}: 2 x {pr.R}x{pr.C} PEs x {pr.V} lanes x "
            f"{pr.f_mhz:g} MHz = {pr.peak_gflops:.0f} {unit}; design: {pr.source}",
        )

    def _prepare(self, case, inputs):
        rt = ocl.runtime(ocl.pick_device(os.environ.get(ocl.ENV_DEVICE)))
        mod = importlib.import_module(KERNELS[case.workload])
        enqueue, out_buf, shape, estimate = mod.prepare(rt, self.preset, case, inputs)
        return FpgaKernel(rt, enqueue, out_buf, shape, estimate, "int32" if case.dtype == "int8" else "float32")
