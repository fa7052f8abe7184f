"""torch.matmul(input, other) operands -> the matmul case layout (matmul.py), with PyTorch's rules.

1-D input (K,) is (1, K) and 1-D other (K,) is (K, 1), the unit dim dropped from the output; 0-D operands are
refused as PyTorch refuses them. Batch dims (all but the last two) broadcast. When other has no batch (or a
batch of ones), input's batch folds into M: one (batch*M, K) @ (K, N) GEMM, as PyTorch computes it. Otherwise
both operands are broadcast to the common batch and materialised. A zero-sized M, N or batch gives an empty
output and K = 0 a zero one, as in PyTorch, with nothing to run.
"""

from __future__ import annotations

import math

import numpy as np

from hetero.errors import HeteroError


def _operands(wl, input, other, a, b):
    if a is not None or b is not None:  # hetero's older names for the same two operands
        if input is not None or other is not None:
            raise HeteroError("matmul: give input and other (or a and b), not both")
        input, other = a, b
    if input is None or other is None:
        raise HeteroError("matmul needs input and other (or a and b)")
    x, y = wl.tensor("input", input), wl.tensor("other", other)
    if x.ndim == 0 or y.ndim == 0:
        raise HeteroError(f"matmul: both arguments need at least 1 dimension, got input {x.shape} and other {y.shape}")
    wl.same_dtype(input=x, other=y)
    return x, y


def bind(wl, input=None, other=None, a=None, b=None, **extra):
    """(params or None when the output is empty or zero, inputs, PyTorch's output shape)."""
    if extra:
        raise HeteroError(f"matmul: unknown argument {sorted(extra)[0]!r}; valid: input, other (or a, b)")
    x, y = _operands(wl, input, other, a, b)
    xm, ym = (x[None] if x.ndim == 1 else x), (y[:, None] if y.ndim == 1 else y)
    M, K, N = xm.shape[-2], xm.shape[-1], ym.shape[-1]
    if ym.shape[-2] != K:
        raise HeteroError(
            f"matmul: input {x.shape} and other {y.shape} cannot be multiplied: input's last dim "
            f"({K}) must equal other's {'only' if y.ndim == 1 else 'second-to-last'} dim "
            f"({ym.shape[-2]})"
        )
    try:
        batch = np.broadcast_shapes(xm.shape[:-2], ym.shape[:-2])
    except ValueError:
        raise HeteroError(f"matmul: batch dims of input {x.shape} and other {y.shape} do not broadcast") from None
    out_shape = batch + ((M,) if x.ndim > 1 else ()) + ((N,) if y.ndim > 1 else ())
    nb = math.prod(batch)
    if 0 in (nb, M, N, K):  # empty output, or K = 0: a sum of nothing, zeros
        return None, {}, out_shape
    if math.prod(ym.shape[:-2]) == 1:  # other shared by every batch: one tall GEMM
        a32 = np.ascontiguousarray(np.broadcast_to(xm, batch + (M, K)), np.float32).reshape(nb * M, K)
        b32 = np.ascontiguousarray(ym.reshape(K, N), np.float32)
        return dict(M=nb * M, N=N, K=K), {"a": a32, "b": b32}, out_shape
    a32 = np.ascontiguousarray(np.broadcast_to(xm, batch + (M, K)), np.float32).reshape(nb, M, K)
    b32 = np.ascontiguousarray(np.broadcast_to(ym, batch + (K, N)), np.float32).reshape(nb, K, N)
    return dict(M=M, N=N, K=K, batch=nb), {"a": a32, "b": b32}, out_shape
