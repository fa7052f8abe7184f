"""cupy: hetero's own GPU kernels through CuPy on the first CUDA device (pip install 'hetero[gpu]').

matmul: cuBLAS (GemmEx) in float32, tf32, float16, bfloat16, batched. attention: the fused flash-style CUDA C
kernels, kernels/attention/flash_attention_sm90.cu (wgmma, 16-bit on Hopper, head dims near 64 and 128) and
flash_attention.cu (mma.sync; float32 on CUDA cores); decode and cross lengths, GQA, masks and a value head size take
the unfused float32 path (kernels/attention/xp_attention.py: cuBLAS GEMMs and CuPy's softmax). conv2d: implicit
GEMMs with no im2col buffer (kernels/conv2d/cupy_igemm.py: tensor cores in 16 bits, FFMA in float32);
conv_transpose2d: cuBLAS GEMMs (one a group) and a col2im kernel. Any stride, padding and dilation along H and W.
Times come from CUDA events around each repetition, after an L2 flush; with nvidia-ml-py, joules per run too.
"""

from __future__ import annotations

import time

import numpy as np

from hetero.backends.base import ALL, MEASURED_DEVICE, Backend, Device, Kernel
from hetero.workloads import get
from hetero.workloads.attention import scale_of

_ALL16 = ("float32", "float16", "bfloat16")
# per-SM dense FLOP per clock on sm_80/sm_90 (fp32 FMA pipes; tensor cores for tf32 and 16-bit)
_PER_SM_CLOCK = {
    (9, 0): {"float32": 256, "tf32": 2048, "float16": 4096, "bfloat16": 4096},
    (8, 0): {"float32": 128, "tf32": 1024, "float16": 2048, "bfloat16": 2048},
}
ENERGY_BATCH_S = 0.3  # NVML's energy counter ticks every few ms: integrate over a batch this long


def _cast(cp, d, dtype: str):
    """float32 device array -> `dtype` (bfloat16 as its 16-bit pattern in uint16)."""
    if dtype == "float16":
        return d.astype(cp.float16)
    if dtype == "bfloat16":  # inputs are already bfloat16 values: the top half of the float32 bits is exact
        return (d.view(cp.uint32) >> 16).astype(cp.uint16)
    return d


class CupyKernel(Kernel):
    timing = MEASURED_DEVICE

    def __init__(self, cp, launch, out, flush, nvml):
        self.cp, self.launch, self.out, self.flush, self.nvml = cp, launch, out, flush, nvml
        self._energy = None

    def __call__(self) -> float:
        """One repetition: flush L2 (write a buffer larger than it), then time the launch with CUDA events."""
        cp = self.cp
        self.flush.fill(0)
        start, end = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        self.launch()
        end.record()
        end.synchronize()
        return cp.cuda.get_elapsed_time(start, end) / 1e3

    def run(self) -> None:
        self.launch()
        self.cp.cuda.get_current_stream().synchronize()

    def result(self) -> np.ndarray:
        return self.cp.asnumpy(_widen(self.cp, self.out))

    @property
    def energy_j(self) -> float | None:
        """Measured board energy per run (NVML total-energy counter over ~0.3 s of back-to-back runs)."""
        if self._energy is None and self.nvml is not None:
            pynvml, handle = self.nvml
            once = max(self(), 1e-6)
            reps = max(3, int(ENERGY_BATCH_S / once))
            sync = self.cp.cuda.get_current_stream().synchronize
            sync()
            e0 = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)  # millijoules
            for _ in range(reps):
                self.launch()
            sync()
            e1 = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            self._energy = (e1 - e0) / 1e3 / reps
        return self._energy


def _nvml(cp):
    """(pynvml, handle) for the current CUDA device, or None without nvidia-ml-py or NVML."""
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml, pynvml.nvmlDeviceGetHandleByPciBusId(cp.cuda.Device().pci_bus_id)
    except Exception:
        return None


class CupyBackend(Backend):
    name = "cupy"
    timing = MEASURED_DEVICE
    dtypes = {
        # int8: int8 operands, exact int32 products (kernels/matmul/cupy_int8.py; workloads.quant)
        "matmul": ("float32", "tf32", "float16", "bfloat16", "int8"),
        "attention": _ALL16,
        "conv2d": _ALL16,
        "conv_transpose2d": _ALL16,
    }
    features = {
        "matmul": frozenset({"batch"}),  # float dtypes; int8 is refused batched (unsupported)
        "attention": ALL,
        "conv2d": frozenset({"rect", "groups"}),
        "conv_transpose2d": frozenset({"rect", "groups"}),
    }

    def unsupported(self, case):
        """Backend.unsupported; int8 matmul (cupy_int8) takes one pair of 2-D operands."""
        if case.workload == "matmul" and case.dtype == "int8" and case.p.get("batch", 1) > 1:
            return "batched int8 matmul not implemented by cupy (kernels/matmul/cupy_int8.py takes 2-D operands)"
        return super().unsupported(case)

    @classmethod
    def _unavailable(cls):
        try:
            import cupy
        except ImportError:
            return "cupy not installed (pip install 'hetero[gpu]')"
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception:  # CUDARuntimeError when no driver or no device
            count = 0
        return None if count > 0 else "no CUDA device"

    def device(self) -> Device:
        import cupy as cp

        dev = cp.cuda.Device()
        attrs = dev.attributes
        props = cp.cuda.runtime.getDeviceProperties(dev.id)
        name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
        sms, cc = attrs["MultiProcessorCount"], divmod(int(dev.compute_capability), 10)
        clock_mhz, mem_gbps, how = None, None, []
        nvml = _nvml(cp)
        if nvml:
            pynvml, h = nvml
            clock_mhz = pynvml.nvmlDeviceGetMaxClockInfo(h, pynvml.NVML_CLOCK_SM)
            mem_mhz = pynvml.nvmlDeviceGetMaxClockInfo(h, pynvml.NVML_CLOCK_MEM)
            bus = pynvml.nvmlDeviceGetMemoryBusWidth(h)
            mem_gbps = mem_mhz * 1e6 * 2 * bus / 8 / 1e9  # double data rate
            how.append(f"max SM clock {clock_mhz} MHz, memory {mem_mhz} MHz x {bus} bit DDR (NVML)")
        elif props.get("clockRate"):
            clock_mhz = props["clockRate"] / 1e3
            how.append(f"SM clock {clock_mhz:.0f} MHz (cudaDeviceProp)")
        rates = _PER_SM_CLOCK.get(cc)
        peaks = {dt: sms * r * clock_mhz * 1e6 / 1e9 for dt, r in rates.items()} if rates and clock_mhz else None
        if peaks:
            how.insert(0, f"{sms} SMs x clock x dense FLOP/clk/SM {rates} (sm_{cc[0]}{cc[1]})")
        return Device(
            name=name,
            kind="gpu",
            cores=sms,
            peak_gflops=(peaks or {}).get("float32"),
            mem_gbps=mem_gbps,
            peak_by_dtype=peaks,
            peak_source="; ".join(how) if how else "unknown (no NVML, no clock)",
        )

    def warmup(self) -> None:
        from hetero.kernels.attention import cupy_attention, cupy_attention_sm90
        from hetero.kernels.conv2d import cupy_conv2d, cupy_igemm

        cupy_attention.module()
        cupy_attention_sm90.usable("float16", 64)  # on Hopper: NVRTC builds the wgmma kernel and self-checks it
        cupy_conv2d.module()
        cupy_igemm.module()

    def _prepare(self, case, inputs):
        import cupy as cp

        cp.cuda.Device().synchronize()
        t0 = time.perf_counter()  # host -> device copy of the float32 inputs, synchronized wall clock
        dev = {k: cp.asarray(v) for k, v in inputs.items() if isinstance(v, np.ndarray)}
        cp.cuda.Device().synchronize()
        transfer_s = time.perf_counter() - t0
        dev = {k: _cast(cp, v, case.dtype) for k, v in dev.items()}
        launch = self._launcher(cp, case, inputs, dev)
        l2 = cp.cuda.Device().attributes["L2CacheSize"]
        kernel = CupyKernel(cp, launch, launch.out, cp.empty(2 * l2 // 4 + 1024, cp.float32), _nvml(cp))
        kernel.transfer_s = transfer_s
        cp.cuda.Device().synchronize()
        return kernel

    def _launcher(self, cp, case, inputs, dev):
        from hetero.kernels.attention import cupy_attention, cupy_attention_sm90
        from hetero.kernels.conv2d import cupy_conv2d, cupy_igemm

        p, w, dt = case.p, get(case.workload), case.dtype
        if case.workload == "matmul" and dt == "int8":
            from hetero.kernels.matmul import cupy_int8

            return cupy_int8.prepare(dev["a"], dev["b"], p["M"], p["N"], p["K"])
        if case.workload == "matmul":
            return _batched_gemm(cp, dev["a"], dev["b"], p, dt)
        if case.workload == "attention" and w.features(p):
            return _general_attention(cp, case, inputs, dev)
        if case.workload == "attention":  # Hopper: the wgmma kernel where it takes the case (and passed its check)
            fused = cupy_attention_sm90 if cupy_attention_sm90.usable(dt, p["D"]) else cupy_attention
            return fused.prepare(
                dev["query"], dev["key"], dev["value"], dt, bool(p["causal"]), scale_of(case, inputs.get("scale"))
            )
        # conv2d: implicit GEMM, no im2col buffer (tensor cores in 16 bits, FFMA in float32)
        prep = cupy_igemm.prepare if case.workload == "conv2d" else cupy_conv2d.prepare_conv_transpose2d
        run = prep(dev["input"], dev["weight"], dt, p, w.out_hw(p))
        if inputs.get("bias") is None:
            return run
        bias = cp.asarray(inputs["bias"], cp.float32).reshape(1, -1, 1, 1)
        out = cp.empty(run.out.shape, cp.float32)

        def launch():  # bias added in float32 on the widened output (16-bit outputs are widened here)
            run()
            cp.add(_widen(cp, run.out), bias, out=out)

        launch.out = out
        return launch


def _batched_gemm(cp, a, b, p: dict, dtype: str):
    """matmul of a (batch, M, K) and b (batch, K, N), or one 2-D pair: one strided-batched cuBLAS call."""
    from hetero.kernels.conv2d import cupy_conv2d

    M, N, K, batch = p["M"], p["N"], p["K"], p.get("batch", 1)
    out = cp.empty(((batch,) if batch > 1 else ()) + (M, N), a.dtype)

    def launch():
        cupy_conv2d.gemm(a, b, out, M, N, K, dtype, batch=batch, stride_a=M * K, stride_b=K * N, stride_c=M * N)

    launch.out = out
    return launch


def _general_attention(cp, case, inputs, dev):
    """SDPA with what the fused kernel does not take (decode/cross lengths, GQA, attn_mask, Dv != D): the
    unfused float32 path, 16-bit inputs widened inside the timed launch; output float32."""
    from hetero.kernels.attention import xp_attention

    q, k, v = (dev[n] for n in ("query", "key", "value"))
    mask = inputs.get("attn_mask")
    mask = None if mask is None else cp.asarray(mask, cp.float32)  # additive, kept in float32 at every dtype
    out = cp.empty(q.shape[:3] + (v.shape[3],), cp.float32)
    causal, scale = bool(case.p["causal"]), scale_of(case, inputs.get("scale"))

    def launch():
        wide = [_widen(cp, x) for x in (q, k, v)]
        xp_attention.attention(cp, *wide, mask, causal, scale, out)

    launch.out = out
    return launch


def _widen(cp, d):
    """Device array (float32, float16, or bfloat16 bits in uint16) -> float32; int32 (int8 cases) as it is."""
    if d.dtype == cp.int32:
        return d
    if d.dtype == cp.uint16:
        return (d.astype(cp.uint32) << 16).view(cp.float32)
    return d.astype(cp.float32, copy=False)
