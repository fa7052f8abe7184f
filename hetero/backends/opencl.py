"""opencl: hetero's OpenCL C kernels (kernels/*/*.cl, launchers kernels/*/opencl_*.py) on any OpenCL device.

Every device of every platform is its own device, chosen by the `device` argument (bench.run --opencl-device)
or $HETERO_OPENCL_DEVICE: "platform:device" ("0:0"), a flat index ("1"), or a name substring ("epyc").
Time comes from OpenCL profiling events, summed over the kernels of one run (packing, im2col, GEMM, ...).
"""

from __future__ import annotations

import importlib

from hetero import opencl_util as ocl
from hetero.backends.base import ALL, MEASURED_DEVICE, Backend, Device, Kernel

# workload -> launcher module; each exposes prepare(rt, case, inputs) -> (enqueue, out_buf, out_shape).
KERNELS = {
    "matmul": "hetero.kernels.matmul.opencl_matmul",
    "attention": "hetero.kernels.attention.opencl_attention",
    "conv2d": "hetero.kernels.conv2d.opencl_conv2d",
    "conv_transpose2d": "hetero.kernels.conv2d.opencl_conv2d",
}


def device_description(dev, label: str) -> Device:
    """Name, compute units and a peak: CPU devices reuse the host's measured peak, others state none."""
    import pyopencl as cl

    name = f"{dev.name.strip()} ({dev.platform.name.strip()} {label})"
    if dev.type & cl.device_type.CPU:
        from hetero.devices import cpu_device

        host = cpu_device(None)
        return Device(
            name=name,
            kind="opencl-cpu",
            cores=dev.max_compute_units,
            peak_gflops=host.peak_gflops,
            peak_by_dtype=host.peak_by_dtype,
            mem_gbps=host.mem_gbps,
            peak_source=f"host CPU: {host.peak_source}",
        )
    kind = "opencl-gpu" if dev.type & cl.device_type.GPU else "opencl"
    return Device(
        name=name, kind=kind, cores=dev.max_compute_units, peak_source="not known for this OpenCL device (no % of peak)"
    )


# int8 (int8 operands, exact int32 products; workloads.quant): workload -> launcher module
INT8_KERNELS = {"matmul": "hetero.kernels.matmul.opencl_int8", "conv2d": "hetero.kernels.conv2d.opencl_conv2d"}


class OpenCLBackend(Backend):
    name = "opencl"
    timing = MEASURED_DEVICE
    dtypes = {w: ("float32", "int8") if w in INT8_KERNELS else ("float32",) for w in KERNELS}
    # What the kernels do beyond the plain layout; the rest is refused with its reason (Backend.unsupported).
    features = {
        "matmul": frozenset({"batch"}),
        "conv2d": frozenset({"rect", "groups"}),
        "conv_transpose2d": frozenset({"rect", "groups"}),
        "attention": ALL,
    }

    @classmethod
    def _unavailable(cls):
        return ocl.unavailable()

    def _runtime(self) -> ocl.Runtime:
        return ocl.runtime(ocl.pick_device(self.device_choice))

    def device(self) -> Device:
        dev = ocl.pick_device(self.device_choice)
        label = next(lb for lb, d in ocl.all_devices() if d == dev)
        return device_description(dev, label)

    def warmup(self) -> None:
        """Tune the GEMM for this device (or load the remembered choice) and build it."""
        from hetero.kernels.matmul.opencl_matmul import tuned

        tuned(self._runtime())

    def _prepare(self, case, inputs):
        rt = self._runtime()
        mod = importlib.import_module((INT8_KERNELS if case.dtype == "int8" else KERNELS)[case.workload])
        enqueue, out_buf, shape = mod.prepare(rt, case, inputs)
        out_dtype = "int32" if case.dtype == "int8" else "float32"
        return make_kernel(rt, enqueue, out_buf, shape, MEASURED_DEVICE, out_dtype=out_dtype)


def make_kernel(
    rt: ocl.Runtime, enqueue, out_buf, out_shape, timing: str, transfer_s: float | None = None, out_dtype="float32"
):
    """A Kernel whose call runs `enqueue()` (-> its events) and returns their summed device seconds; its result is
    float32, or int32 for int8 cases (the exact accumulators)."""
    import numpy as np

    class _K(Kernel):
        def __call__(self) -> float:
            return ocl.event_seconds(enqueue())

        def run(self) -> None:
            enqueue()[-1].wait()

        def result(self):
            return rt.read(np.empty(out_shape, out_dtype), out_buf)

    k = _K()
    k.timing, k.transfer_s = timing, transfer_s
    return k
