"""torch, torch-cuda: PyTorch as a *peer*, the library our kernels are measured against (not hetero's code).

torch: PyTorch CPU (oneDNN/MKL) on `threads` cores, wall clock. torch-cuda: PyTorch on the first CUDA GPU,
timed with CUDA events, fp16/bf16/tf32 where the GPU has them. Install with the `peers` extra.
"""

from __future__ import annotations

import numpy as np

from hetero.backends.base import ALL, MEASURED_DEVICE, Backend, Device, Kernel
from hetero.devices import cpu_device
from hetero.workloads.attention import scale_of
from hetero.workloads.conv2d import hw

_ALL = ("matmul", "attention", "conv2d", "conv_transpose2d")


def _torch_call(torch, case, t: dict):
    """The PyTorch function call for `case` on tensors `t` (same names as the workload's inputs)."""
    F, p = torch.nn.functional, case.p
    if case.workload == "matmul" and case.dtype == "int8":  # int8 x int8 -> int32 (oneDNN, VNNI where the CPU has it)
        if t["a"].dim() == 2:
            return lambda: torch._int_mm(t["a"], t["b"])
        return lambda: torch.stack([torch._int_mm(x, y) for x, y in zip(t["a"], t["b"])])
    if case.workload == "matmul":
        return lambda: torch.matmul(t["a"], t["b"])
    if case.workload == "attention":
        scale = scale_of(case, t.get("scale"))
        mask = t.get("attn_mask")
        mask = None if mask is None else mask.to(t["query"].dtype)
        gqa = t["key"].shape[1] != t["query"].shape[1]
        return lambda: F.scaled_dot_product_attention(
            t["query"], t["key"], t["value"], attn_mask=mask, is_causal=bool(p["causal"]), scale=scale, enable_gqa=gqa
        )
    opts = {k: hw(p, k) for k in ("stride", "padding", "dilation", "output_padding") if k in p}
    if case.workload == "conv2d":
        return lambda: F.conv2d(
            t["input"], t["weight"], t.get("bias"), opts["stride"], opts["padding"], opts["dilation"], p["groups"]
        )
    return lambda: F.conv_transpose2d(
        t["input"],
        t["weight"],
        t.get("bias"),
        opts["stride"],
        opts["padding"],
        opts["output_padding"],
        p["groups"],
        opts["dilation"],
    )


class _TorchKernel(Kernel):
    def __init__(self, torch, call, sync=None, events=False):
        self.torch, self.call, self.sync, self.events, self.out = torch, call, sync, events, None

    def __call__(self) -> float:
        if not self.events:
            return super().__call__()
        start, end = (self.torch.cuda.Event(enable_timing=True) for _ in range(2))
        start.record()
        self.out = self.call()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3

    def run(self) -> None:
        with self.torch.inference_mode():
            self.out = self.call()
        if self.sync:
            self.sync()

    def result(self) -> np.ndarray:
        out = self.out if self.out.dtype == self.torch.int32 else self.out.float()  # int8 cases: exact int32
        return out.cpu().numpy()


class TorchCPUBackend(Backend):
    name = "torch"
    peer = True
    # int8: matmul through torch._int_mm; PyTorch has no int8 x int8 -> int32 convolution to compare with
    dtypes = {w: ("float32", "int8") if w == "matmul" else ("float32",) for w in _ALL}
    features = {w: ALL for w in _ALL}

    @classmethod
    def _unavailable(cls):
        try:
            import torch  # noqa: F401
        except ImportError:
            return "torch not installed (pip install 'hetero[peers]')"
        return None

    def device(self) -> Device:
        return cpu_device(self.threads)

    def _prepare(self, case, inputs):
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)
        # torch may write into what it is given: a read-only array (a broadcast view, say) is copied first
        t = {
            k: (torch.from_numpy(v if v.flags.writeable else v.copy()) if isinstance(v, np.ndarray) else v)
            for k, v in inputs.items()
        }
        return _TorchKernel(torch, _torch_call(torch, case, t))


class TorchCUDABackend(Backend):
    name = "torch-cuda"
    peer = True
    timing = MEASURED_DEVICE
    dtypes = {
        "matmul": ("float32", "tf32", "float16", "bfloat16"),
        "attention": ("float32", "float16", "bfloat16"),
        "conv2d": ("float32", "float16", "bfloat16"),
        "conv_transpose2d": ("float32", "float16", "bfloat16"),
    }
    features = {w: ALL for w in _ALL}

    @classmethod
    def _unavailable(cls):
        try:
            import torch
        except ImportError:
            return "torch not installed"
        return None if torch.cuda.is_available() else "no CUDA device visible to torch"

    def device(self) -> Device:
        import torch

        props = torch.cuda.get_device_properties(0)
        return Device(
            name=props.name,
            kind="gpu",
            cores=props.multi_processor_count,
            peak_source="see the cupy backend's device description",
        )

    def _prepare(self, case, inputs):
        import torch

        torch.backends.cuda.matmul.allow_tf32 = case.dtype == "tf32"
        torch.backends.cudnn.allow_tf32 = case.dtype == "tf32"
        dt = {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(case.dtype, torch.float32)
        t = {k: (torch.from_numpy(v).to("cuda", dt) if isinstance(v, np.ndarray) else v) for k, v in inputs.items()}
        torch.cuda.synchronize()
        kernel = _TorchKernel(torch, _torch_call(torch, case, t), torch.cuda.synchronize, events=True)
        kernel.timing = MEASURED_DEVICE
        return kernel
