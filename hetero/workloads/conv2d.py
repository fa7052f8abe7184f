"""conv2d and conv_transpose2d, NCHW, groups=1, as torch.nn.functional.conv2d(input, weight, bias, stride,
padding, dilation) and conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups=1, dilation).

Stride, padding and dilation are the same along H and W (every preset here is square); a pair of unequal
values is refused with a message rather than silently squared.
"""
from __future__ import annotations

import math

import numpy as np

from hetero.errors import HeteroError
from hetero.workloads.base import Case, Preset, Workload

_GPU = frozenset({"gpu"})


def out_size(n: int, r: int, stride: int, pad: int, dil: int) -> int:
    """Output length of a convolution along one axis (PyTorch's formula)."""
    return (n + 2 * pad - dil * (r - 1) - 1) // stride + 1


def out_size_transposed(n: int, r: int, stride: int, pad: int, dil: int, out_pad: int) -> int:
    """Output length of a transposed convolution along one axis (PyTorch's formula)."""
    return (n - 1) * stride - 2 * pad + dil * (r - 1) + out_pad + 1


def _square(name: str, value) -> int:
    vals = value if isinstance(value, (tuple, list)) else (value, value)
    if len(vals) != 2 or vals[0] != vals[1] or not all(isinstance(v, (int, np.integer)) for v in vals):
        raise HeteroError(f"{name}={value!r}: give one integer or a pair of equal integers (H and W alike)")
    return int(vals[0])


def _conv(*, N, C, H, W, K, R, S, stride=1, padding=0, dilation=1):
    return dict(N=N, C=C, H=H, W=W, K=K, R=R, S=S, stride=stride, padding=padding, dilation=dilation)


class Conv2d(Workload):
    name = "conv2d"
    dims = ("N", "C", "H", "W", "K", "R", "S")
    options = {"stride": 1, "padding": 0, "dilation": 1}
    description = "NCHW convolution: input (N, C, H, W), weight (K, C, R, S) -> (N, K, P, Q)"
    presets = (
        Preset("dcgan-d2", _conv(N=16, C=64, H=32, W=32, K=128, R=4, S=4, stride=2, padding=1),
               "DCGAN discriminator layer 2 (64 -> 128 channels, 4x4 stride 2)"),
        Preset("resnet-3x3", _conv(N=8, C=64, H=56, W=56, K=64, R=3, S=3, padding=1),
               "ResNet-18/34 conv2_x 3x3 layer"),
        Preset("deepbench-1x1", _conv(N=8, C=64, H=56, W=56, K=256, R=1, S=1),
               "DeepBench conv (56,56,64,8,256,1,1,0,1)"),
        Preset("deepbench-5x5", _conv(N=16, C=192, H=28, W=28, K=32, R=5, S=5, padding=2),
               "DeepBench conv (28,28,192,16,32,5,5,2,1)", frozenset({"extra"})),
        Preset("deepbench-7x7x512", _conv(N=16, C=512, H=7, W=7, K=512, R=3, S=3, padding=1),
               "DeepBench conv (7,7,512,16,512,3,3,1,1)", frozenset({"extra", "gpu"})),
        Preset("deepbench-224", _conv(N=16, C=3, H=224, W=224, K=64, R=3, S=3, padding=1),
               "DeepBench conv (224,224,3,16,64,3,3,1,1), first layer", _GPU),
        Preset("resnet-3x3-b64", _conv(N=64, C=64, H=56, W=56, K=64, R=3, S=3, padding=1),
               "ResNet conv2_x at batch 64", _GPU),
        Preset("quick-odd", _conv(N=2, C=3, H=11, W=13, K=5, R=3, S=3, stride=2, padding=1),
               "tiny, odd sizes, stride 2", frozenset({"quick"})),
        Preset("quick-dilated", _conv(N=1, C=4, H=9, W=9, K=3, R=3, S=3, padding=2, dilation=2),
               "tiny, dilation 2", frozenset({"quick"})),
    )

    def validate(self, p: dict) -> None:
        super().validate(p)
        if p["stride"] < 1 or p["dilation"] < 1 or p["padding"] < 0:
            raise HeteroError(f"{self.name}: stride and dilation must be >= 1 and padding >= 0 "
                              f"(got stride={p['stride']}, padding={p['padding']}, dilation={p['dilation']})")
        if min(self.out_hw(p)) < 1:
            raise HeteroError(f"{self.name}: a {p['R']}x{p['S']} kernel (dilation {p['dilation']}) does not fit a "
                              f"{p['H']}x{p['W']} input with padding {p['padding']}")

    def out_hw(self, p: dict) -> tuple[int, int]:
        return (out_size(p["H"], p["R"], p["stride"], p["padding"], p["dilation"]),
                out_size(p["W"], p["S"], p["stride"], p["padding"], p["dilation"]))

    def weight_shape(self, p: dict) -> tuple:
        return (p["K"], p["C"], p["R"], p["S"])

    def workspace_elems(self, p: dict) -> float:
        """N*C*R*S*P*Q: fpga-emu's im2col matrix (N, C*R*S, P*Q)."""
        return float(p["N"] * p["C"] * p["R"] * p["S"] * math.prod(self.out_hw(p)))

    def out_shape(self, p: dict) -> tuple[int, ...]:
        return (p["N"], p["K"], *self.out_hw(p))

    def make_inputs(self, case: Case, seed: int = 0) -> dict[str, np.ndarray]:
        p, rng = case.p, np.random.default_rng(seed)
        fan_in = p["C"] * p["R"] * p["S"]
        return {"input": self.random(rng, (p["N"], p["C"], p["H"], p["W"]), case.dtype),
                "weight": self.random(rng, self.weight_shape(p), case.dtype, fan_in ** -0.5),
                "bias": None}

    def reference(self, case: Case, inputs, dtype=np.float64) -> np.ndarray:
        p = case.p
        x, w = inputs["input"].astype(dtype, copy=False), inputs["weight"].astype(dtype, copy=False)
        st, pad, dil = p["stride"], p["padding"], p["dilation"]
        P, Q = self.out_hw(p)
        xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))  # (N, C, H+2p, W+2p)
        out = np.zeros((p["N"], p["K"], P, Q), dtype)
        for r in range(p["R"]):  # one GEMM per kernel tap keeps memory at one input-sized patch
            for s in range(p["S"]):
                patch = xp[:, :, r * dil: r * dil + st * (P - 1) + 1: st, s * dil: s * dil + st * (Q - 1) + 1: st]
                out += np.einsum("ncpq,kc->nkpq", patch, w[:, :, r, s], optimize=True)
        return _add_bias(out, inputs.get("bias"))

    def flops(self, p: dict) -> float:
        """2*N*K*C*R*S*P*Q: one multiply-add per output element per weight tap (bias not counted)."""
        P, Q = self.out_hw(p)
        return 2.0 * p["N"] * p["K"] * p["C"] * p["R"] * p["S"] * P * Q

    def bytes_moved(self, p: dict, itemsize: int) -> float:
        """(N*C*H*W + K*C*R*S + N*K*P*Q) * itemsize: input, weight read once, output written once."""
        P, Q = self.out_hw(p)
        return float(p["N"] * p["C"] * p["H"] * p["W"] + p["K"] * p["C"] * p["R"] * p["S"]
                     + p["N"] * p["K"] * P * Q) * itemsize

    def from_arrays(self, input=None, weight=None, bias=None, stride=1, padding=0, dilation=1, **extra):
        valid = "input, weight, bias, stride, padding, dilation"
        return self._from_arrays(input, weight, bias, dict(stride=stride, padding=padding, dilation=dilation),
                                 extra, valid)

    def _from_arrays(self, input, weight, bias, opts, extra, valid):
        if extra:
            raise HeteroError(f"{self.name}: unknown argument {sorted(extra)[0]!r}; valid: {valid}")
        if input is None or weight is None:
            raise HeteroError(f"{self.name} needs input and weight")
        x, w = self.array("input", input, 4), self.array("weight", weight, 4)
        if x.shape[1] != w.shape[self.weight_in_axis]:
            raise HeteroError(f"{self.name}: input has {x.shape[1]} channels but weight {w.shape} expects "
                              f"{w.shape[self.weight_in_axis]} (groups=1)")
        k = w.shape[1 - self.weight_in_axis]
        b = None if bias is None else self.array("bias", bias, 1)
        if b is not None and b.shape != (k,):
            raise HeteroError(f"{self.name}: bias has shape {b.shape}; expected ({k},) for {k} output channels")
        params = dict(N=x.shape[0], C=x.shape[1], H=x.shape[2], W=x.shape[3], K=k, R=w.shape[2], S=w.shape[3],
                      **{name: _square(name, v) for name, v in opts.items()})
        return params, {"input": x, "weight": w, "bias": b}

    weight_in_axis = 1  # weight (K, C, R, S): input channels on axis 1


class ConvTranspose2d(Conv2d):
    name = "conv_transpose2d"
    options = {"stride": 1, "padding": 0, "output_padding": 0, "dilation": 1}
    description = "transposed NCHW convolution (GAN generators): input (N, C, H, W), weight (C, K, R, S)"
    weight_in_axis = 0  # PyTorch's layout for transposed conv: (in_channels, out_channels, R, S)
    presets = (
        Preset("dcgan-g2", _conv(N=16, C=256, H=8, W=8, K=128, R=4, S=4, stride=2, padding=1) | {"output_padding": 0},
               "DCGAN generator layer: 256 -> 128 channels, 8x8 -> 16x16"),
        Preset("dcgan-g3", _conv(N=16, C=128, H=16, W=16, K=64, R=4, S=4, stride=2, padding=1) | {"output_padding": 0},
               "DCGAN generator layer: 128 -> 64 channels, 16x16 -> 32x32"),
        Preset("dcgan-g4", _conv(N=16, C=64, H=32, W=32, K=3, R=4, S=4, stride=2, padding=1) | {"output_padding": 0},
               "DCGAN generator output layer: 64 -> 3 (RGB) channels, 32x32 -> 64x64"),
        Preset("dcgan-g2-b128", _conv(N=128, C=512, H=4, W=4, K=256, R=4, S=4, stride=2, padding=1)
               | {"output_padding": 0}, "DCGAN generator at batch 128, 512 -> 256 channels", _GPU),
        Preset("quick-odd", _conv(N=2, C=3, H=5, W=7, K=4, R=3, S=3, stride=2, padding=1) | {"output_padding": 1},
               "tiny, odd sizes, output_padding 1", frozenset({"quick"})),
    )

    def validate(self, p: dict) -> None:
        Workload.validate(self, p)
        if p["stride"] < 1 or p["dilation"] < 1 or p["padding"] < 0 or p["output_padding"] < 0:
            raise HeteroError(f"{self.name}: stride, dilation >= 1 and padding, output_padding >= 0 required")
        if p["output_padding"] >= max(p["stride"], p["dilation"]):
            raise HeteroError(f"{self.name}: output_padding={p['output_padding']} must be smaller than stride or "
                              f"dilation ({p['stride']}, {p['dilation']})")
        if min(self.out_hw(p)) < 1:
            raise HeteroError(f"{self.name}: padding {p['padding']} leaves no output for a {p['H']}x{p['W']} input")

    def out_hw(self, p: dict) -> tuple[int, int]:
        args = (p["stride"], p["padding"], p["dilation"], p["output_padding"])
        return out_size_transposed(p["H"], p["R"], *args), out_size_transposed(p["W"], p["S"], *args)

    def weight_shape(self, p: dict) -> tuple:
        return (p["C"], p["K"], p["R"], p["S"])

    def workspace_elems(self, p: dict) -> float:
        """N*K*R*S*H*W: the col2im matrix (N, K*R*S, H*W) of opencl and fpga-emu."""
        return float(p["N"] * p["K"] * p["R"] * p["S"] * p["H"] * p["W"])

    def make_inputs(self, case: Case, seed: int = 0) -> dict[str, np.ndarray]:
        inputs = super().make_inputs(case, seed)
        # Each output sums about C*R*S/stride^2 terms; rescale so outputs stay O(1) in 16-bit types.
        p = case.p
        inputs["weight"] = self.random(np.random.default_rng(seed + 1), self.weight_shape(p), case.dtype,
                                       (p["C"] * p["R"] * p["S"] / p["stride"] ** 2) ** -0.5)
        return inputs

    def reference(self, case: Case, inputs, dtype=np.float64) -> np.ndarray:
        p = case.p
        x, w = inputs["input"].astype(dtype, copy=False), inputs["weight"].astype(dtype, copy=False)
        st, pad, dil, H, W = p["stride"], p["padding"], p["dilation"], p["H"], p["W"]
        Ho, Wo = self.out_hw(p)
        # Scatter every input pixel through every tap into an uncropped output, then crop `padding` away.
        full = np.zeros((p["N"], p["K"], Ho + 2 * pad, Wo + 2 * pad), dtype)
        for r in range(p["R"]):
            for s in range(p["S"]):
                contrib = np.einsum("nchw,ck->nkhw", x, w[:, :, r, s], optimize=True)  # (N, K, H, W)
                full[:, :, r * dil: r * dil + st * (H - 1) + 1: st, s * dil: s * dil + st * (W - 1) + 1: st] += contrib
        return _add_bias(full[:, :, pad: pad + Ho, pad: pad + Wo], inputs.get("bias"))

    def flops(self, p: dict) -> float:
        """2*N*C*K*R*S*H*W: every input pixel meets every tap of every output channel once."""
        return 2.0 * p["N"] * p["C"] * p["K"] * p["R"] * p["S"] * p["H"] * p["W"]

    def from_arrays(self, input=None, weight=None, bias=None, stride=1, padding=0, output_padding=0, dilation=1,
                    **extra):
        valid = "input, weight, bias, stride, padding, output_padding, dilation"
        opts = dict(stride=stride, padding=padding, output_padding=output_padding, dilation=dilation)
        return self._from_arrays(input, weight, bias, opts, extra, valid)


def _add_bias(out: np.ndarray, bias) -> np.ndarray:
    if bias is not None:
        out = out + bias.astype(out.dtype).reshape(1, -1, 1, 1)
    return np.ascontiguousarray(out)
