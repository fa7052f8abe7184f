"""int8: symmetric quantization of a case's float32 inputs, the exact integer reference, and what quantizing cost.

Two questions are kept apart. Correctness: a kernel is given int8 operands and returns their int32 products
(int32 accumulation of int8 products is exact), compared with the integer reference exactly. Accuracy: the
dequantized product against the float reference, quant_err, reported and never a gate.

Scales are symmetric, x ~ s * q with |q| <= 127 and s = max|x| / 127 over a group:
  channel (the default)  activations per row (token): matmul's a per row of M, conv2d's input per image;
                         weights per output channel: matmul's b per column of N, conv2d's weight per K
  tensor                 one scale per operand
Either way a scale is constant along the reduction (K, or C*R*S), so it factors out of each output element:
out = s_a[row] * s_b[col] * acc, plus conv2d's bias, which stays float32 and is added after dequantizing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hetero.errors import choices
from hetero.workloads.base import Case, get

SCHEMES = ("channel", "tensor")
INT8 = ("matmul", "conv2d")  # the workloads with an int8 form
# workload -> operand -> axes its per-channel scale is taken over (the reduction axes), shapes as in the case
_AXES = {"matmul": {"a": (-1,), "b": (-2,)}, "conv2d": {"input": (1, 2, 3), "weight": (1, 2, 3)}}


@dataclass(frozen=True)
class Quantized:
    """What an int8 kernel is given (`inputs`: the operands as int8, no bias) and what dequantizes its output."""

    inputs: dict[str, np.ndarray]
    scales: dict[str, np.ndarray]  # operand -> float64 scales, broadcastable against the operand
    bias: np.ndarray | None


def quantize_array(x: np.ndarray, axes: tuple[int, ...] | None) -> tuple[np.ndarray, np.ndarray]:
    """(q int8, s float64) with x ~ s * q, |q| <= 127; s per slice along the other axes, or one for all (None)."""
    amax = np.abs(x).max(axis=axes, keepdims=True) if axes else np.abs(x).max(keepdims=True)
    s = np.where(amax > 0, amax.astype(np.float64) / 127.0, 1.0)
    return np.clip(np.rint(x / s), -127, 127).astype(np.int8), s


def quantize(case: Case, inputs: dict, scheme: str = "channel") -> Quantized:
    """The case's float32 inputs, quantized under `scheme` (module docstring)."""
    if scheme not in SCHEMES:
        raise choices("quantization scheme", scheme, SCHEMES)
    if case.workload not in INT8:
        raise choices("int8 workload", case.workload, INT8)
    q, s = {}, {}
    for name, axes in _AXES[case.workload].items():
        q[name], s[name] = quantize_array(inputs[name], axes if scheme == "channel" else None)
    return Quantized(q, s, inputs.get("bias"))


def int_reference(case: Case, qz: Quantized) -> np.ndarray:
    """The exact integer product of the quantized operands (float64 holding integers: |acc| <= 127^2 * K stays
    far below 2^53, so the float64 reference's sums are exact in any order)."""
    return get(case.workload).reference(case, {**qz.inputs, "bias": None}, np.float64)


def dequantize(case: Case, acc: np.ndarray, qz: Quantized) -> np.ndarray:
    """float64 output: acc scaled by its row's and column's scales, plus the bias."""
    acc = np.asarray(acc, np.float64)
    if case.workload == "matmul":  # s_a (..., M, 1) * s_b (..., 1, N)
        return acc * qz.scales["a"] * qz.scales["b"]
    sx = qz.scales["input"].reshape(-1, 1, 1, 1)  # (N or 1, 1, 1, 1)
    sw = qz.scales["weight"].reshape(1, -1, 1, 1)  # (1, K or 1, 1, 1)
    out = acc * sx * sw
    return out if qz.bias is None else out + qz.bias.astype(np.float64).reshape(1, -1, 1, 1)


def quant_err(deq: np.ndarray, ref: np.ndarray) -> float:
    """Relative RMS error of the dequantized output: rms(deq - ref) / rms(ref) (0 when ref is all zeros)."""
    rms = float(np.sqrt(np.mean(np.square(ref))))
    return float(np.sqrt(np.mean(np.square(deq - ref)))) / rms if rms else 0.0


def accuracy(case: Case, ref: np.ndarray, inputs: dict) -> dict[str, float]:
    """scheme -> quant_err of the case's inputs quantized that way, against the float reference `ref`."""
    out = {}
    for scheme in SCHEMES:
        qz = quantize(case, inputs, scheme)
        out[scheme] = quant_err(dequantize(case, int_reference(case, qz), qz), ref)
    return out
