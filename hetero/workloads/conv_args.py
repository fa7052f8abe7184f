"""conv2d / conv_transpose2d arguments -> the conv case layout (conv2d.py), checked where PyTorch checks them.

stride, padding, dilation (and output_padding) are an int or an (h, w) pair; conv2d's padding may also be
"valid" (0) or "same" (stride 1 only, total padding dilation*(kernel-1) per axis; when that is odd PyTorch puts
the extra row/column at the bottom/right, which is done here by padding the input by one there). A 3-D input
(C, H, W) is one unbatched image: the output drops the batch dim again.
"""

from __future__ import annotations

import numpy as np

from hetero.errors import HeteroError


def _int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise HeteroError(f"{name}={value!r} must be an integer or a pair of integers")
    return int(value)


def _pair(wl_name: str, name: str, value, lo: int) -> tuple[int, int]:
    vals = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(vals) != 2:
        raise HeteroError(f"{wl_name}: {name}={value!r} must be an integer or an (h, w) pair")
    h, w = (_int(f"{wl_name}: {name}", v) for v in vals)
    if min(h, w) < lo:
        word = "negative" if lo == 0 else "non-positive"
        raise HeteroError(f"{wl_name}: {name}={value!r}: {word} {name} is not supported")
    return h, w


def _same_padding(x: np.ndarray, wshape, stride, dilation) -> tuple[np.ndarray, tuple[int, int]]:
    """padding='same': symmetric padding plus, where the total is odd, one extra row/column at the end."""
    if stride != (1, 1):
        raise HeteroError(f"conv2d: padding='same' is not supported for strided convolutions (stride={stride})")
    total = [d * (k - 1) for d, k in zip(dilation, wshape[2:])]
    extra = [t % 2 for t in total]
    if any(extra):
        x = np.pad(x, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))
    return x, (total[0] // 2, total[1] // 2)


def _padding(wl, x, wshape, padding, stride, dilation):
    if isinstance(padding, str):
        if wl.name != "conv2d" or padding not in ("same", "valid"):
            valid = "'valid' or 'same'" if wl.name == "conv2d" else "an integer or an (h, w) pair"
            raise HeteroError(f"{wl.name}: padding={padding!r} is not valid; give {valid}")
        if padding == "valid":
            return x, (0, 0)
        return _same_padding(x, wshape, stride, dilation)
    return x, _pair(wl.name, "padding", padding, 0)


def _out_channels(name: str, C: int, wshape: tuple, g: int, transposed: bool) -> int:
    """K, after PyTorch's checks of the input's C channels against the weight and groups."""
    if transposed:
        if wshape[0] != C or C % g:
            raise HeteroError(
                f"{name}: input has {C} channels but weight {wshape} (C, K/groups, R, S) "
                f"expects {wshape[0]} in {g} group(s)"
            )
        return wshape[1] * g
    if wshape[0] % g:
        raise HeteroError(f"{name}: weight {wshape} has {wshape[0]} output channels, not divisible by groups={g}")
    if wshape[1] * g != C:
        raise HeteroError(
            f"{name}: input has {C} channels but weight {wshape} (K, C/groups, R, S) "
            f"expects {wshape[1] * g} (groups={g})"
        )
    return wshape[0]


def _empty_as_onednn(wl, p: dict, opts: dict) -> bool:
    """A transposed conv whose output is 0 rows or columns (not fewer) is an empty tensor where PyTorch (float32,
    CPU) hands it to oneDNN, and "Output size is too small" where its own kernel runs. oneDNN gets it, whatever
    the thread count (its rule in ConvParams::use_mkldnn), when output_padding < stride on both axes, the conv is
    strided, dilated, has a batch of 16 or a kernel other than 1x1, and it has groups, a kernel over 3x3, a
    batch over 1 or more than 20480 input values. opts: the (h, w) pairs of stride, dilation, output_padding."""
    P, Q = wl.out_hw(p)
    st, dil, op = opts["stride"], opts["dilation"], opts["output_padding"]
    if min(P, Q) != 0 or any(o >= s for o, s in zip(op, st)):
        return False
    N, R, S = p["N"], p["R"], p["S"]
    if not (max(st) > 1 or max(dil) > 1 or N >= 16 or (R, S) != (1, 1)):
        return False
    return p["groups"] > 1 or (R > 3 and S > 3) or N > 1 or N * p["C"] * p["H"] * p["W"] > 20480


def bind(
    wl, input=None, weight=None, bias=None, stride=1, padding=0, dilation=1, groups=1, output_padding=None, **extra
):
    """(params or None when the output is empty, inputs, PyTorch's output shape)."""
    transposed = wl.name == "conv_transpose2d"
    valid = "input, weight, bias, stride, padding, " + (
        "output_padding, groups, dilation" if transposed else "dilation, groups"
    )
    if extra or (output_padding is not None and not transposed):
        bad = sorted(extra)[0] if extra else "output_padding"
        raise HeteroError(f"{wl.name}: unknown argument {bad!r}; valid: {valid}")
    if input is None or weight is None:
        raise HeteroError(f"{wl.name} needs input and weight")
    x, w = wl.tensor("input", input), wl.tensor("weight", weight)
    if x.ndim not in (3, 4):
        raise HeteroError(f"{wl.name}: input must be 3-D (C, H, W, unbatched) or 4-D (N, C, H, W), got {x.shape}")
    if w.ndim != 4:
        raise HeteroError(f"{wl.name}: weight must be 4-D, got {w.shape}")
    b = None if bias is None else wl.tensor("bias", bias)
    wl.same_dtype(input=x, weight=w, **({} if b is None else {"bias": b}))
    unbatched = x.ndim == 3
    x = x[None] if unbatched else x
    g = _int(f"{wl.name}: groups", groups)
    if g < 1:
        raise HeteroError(f"{wl.name}: groups={g}: non-positive groups is not supported")
    st, dil = _pair(wl.name, "stride", stride, 1), _pair(wl.name, "dilation", dilation, 1)
    x, pad = _padding(wl, x, w.shape, padding, st, dil)
    C, K = x.shape[1], _out_channels(wl.name, x.shape[1], w.shape, g, transposed)
    if b is not None and b.shape != (K,):
        raise HeteroError(f"{wl.name}: bias has shape {b.shape}; expected ({K},) for {K} output channels")
    opts = {"stride": st, "padding": pad, "dilation": dil}
    if transposed:
        opts["output_padding"] = _pair(wl.name, "output_padding", 0 if output_padding is None else output_padding, 0)
    params = dict(N=x.shape[0], C=C, H=x.shape[2], W=x.shape[3], K=K, R=w.shape[2], S=w.shape[3], groups=g)
    for k, (h, wv) in opts.items():
        params[k], params[k + "_w"] = h, (-1 if wv == h else wv)
    if min(params[d] for d in ("C", "H", "W", "R", "S")) < 1:
        raise HeteroError(f"{wl.name}: input {x.shape} and weight {w.shape} need non-empty C, H, W, R and S")
    if params["K"] == 0 or params["N"] == 0:  # PyTorch returns an empty output
        if not transposed:  # PyTorch still checks that the kernel fits
            wl._validate_out(params)
        elif params["N"]:  # and, for a transposed conv with images, output_padding
            wl.check_output_padding(params)
        P, Q = wl.out_hw(params)
        if min(P, Q) < 0:
            raise HeteroError(f"{wl.name}: padding {pad} leaves a negative output size ({P}, {Q})")
        shape = (params["N"], params["K"], P, Q)
        return None, {}, shape[1:] if unbatched else shape
    if transposed and _empty_as_onednn(wl, params, opts):
        shape = (params["N"], K, *wl.out_hw(params))
        return None, {}, shape[1:] if unbatched else shape
    wl.validate(params)  # the output fits: PyTorch's "kernel size can't be greater than input" and friends
    f32 = {
        "input": np.ascontiguousarray(x, np.float32),
        "weight": np.ascontiguousarray(w, np.float32),
        "bias": None if b is None else np.ascontiguousarray(b, np.float32),
    }
    out = wl.out_shape(params)
    return params, f32, out[1:] if unbatched else out
