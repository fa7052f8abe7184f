"""scaled_dot_product_attention's arguments -> the attention case layout (attention.py), as PyTorch reads them.

query (..., L, E), key (..., S, E), value (..., S, Ev). The batch dims (all but the last two) broadcast against
each other as torch.matmul's do; with enable_gqa=True the head dim (-3) of key and value may instead divide the
query's. The broadcast batch shape (..., H) becomes (B, H): H its last dim (1 for 2-D inputs), B the product of
the rest. A key/value head dim of 1 broadcast over H query heads is multi-query attention (Hkv = 1), which needs
no copy; other broadcasts are materialised.
"""

from __future__ import annotations

import math

import numpy as np

from hetero.errors import HeteroError

MASK_NONE, MASK_BOOL, MASK_FLOAT = 0, 1, 2  # the attention case's `mask` option: none, boolean, additive float

VALID = "query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa"


def additive_mask(keep: np.ndarray) -> np.ndarray:
    """A boolean mask (True = attend) as the additive float32 mask backends receive: 0 or -inf."""
    return np.where(keep, np.float32(0.0), np.float32(-np.inf)).astype(np.float32)


def _broadcast(name: str, *shapes) -> tuple:
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        raise HeteroError(f"attention: batch dims of {name} do not broadcast: " + ", ".join(map(str, shapes))) from None


def _heads(q, k, v, enable_gqa: bool) -> tuple[tuple, int]:
    """(broadcast batch shape (..., H), Hkv): Hkv = H unless key and value heads divide H (grouped-query)."""
    if enable_gqa and min(q.ndim, k.ndim, v.ndim) < 3:  # PyTorch reads dim -3 of each as its heads
        raise HeteroError(
            f"attention: enable_gqa=True needs a head dim (-3) in query {q.shape}, key {k.shape} and value {v.shape}"
        )
    hq = q.shape[-3] if q.ndim >= 3 else 1
    hk, hv = (x.shape[-3] if x.ndim >= 3 else None for x in (k, v))
    if enable_gqa and q.ndim >= 3 and hk is not None and hv is not None and (hk, hv) != (hq, hq):
        if 0 in (hk, hv) or hq % hk or hq % hv:
            raise HeteroError(
                f"attention: enable_gqa needs key heads ({hk}) and value heads ({hv}) to divide query heads ({hq})"
            )
        outer = _broadcast("query, key and value", q.shape[:-3], k.shape[:-3], v.shape[:-3])
        return outer + (hq,), math.lcm(hk, hv)
    batch = _broadcast(
        "query, key and value (for grouped-query attention pass enable_gqa=True)",
        q.shape[:-2],
        k.shape[:-2],
        v.shape[:-2],
    )
    h = batch[-1] if batch else 1
    shared = all(x.ndim < 3 or x.shape[-3] == 1 for x in (k, v))  # one key/value head for every query head
    return batch, (1 if shared else h)


def _kv(x: np.ndarray, batch: tuple, hkv: int) -> np.ndarray:
    """key or value (..., h, S, E) -> (B, Hkv, S, E) over the broadcast batch shape (..., H); a key/value head
    count h that divides Hkv (grouped-query) is repeated Hkv // h times, each head next to its copies."""
    if x.ndim >= 3 and x.shape[-3] not in (1, hkv):
        x = np.repeat(x, hkv // x.shape[-3], axis=-3)
    full = batch[:-1] + (hkv,) if batch else (1,)
    return np.ascontiguousarray(np.broadcast_to(x, full + x.shape[-2:]), np.float32).reshape((-1, hkv) + x.shape[-2:])


def _mask(attn_mask, q_dtype, batch: tuple, L: int, S: int):
    """attn_mask broadcastable to (..., L, S) -> (mask kind, additive float32 (Bm, Hm, L, S))."""
    m = np.asarray(attn_mask)
    if m.dtype != np.bool_ and m.dtype not in (np.float32, q_dtype):
        raise HeteroError(f"attention: attn_mask dtype {m.dtype} must be bool, float32 or the query's ({q_dtype})")
    if m.ndim < 2:
        raise HeteroError(f"attention: attn_mask must have at least 2 dimensions (..., L, S), got {m.shape}")
    target = batch + (L, S)
    try:
        ok = np.broadcast_shapes(m.shape, target) == target
    except ValueError:
        ok = False
    if not ok:
        raise HeteroError(f"attention: attn_mask {m.shape} does not broadcast to (..., L, S) = {target}")
    lead = (1,) * (len(target) - m.ndim) + m.shape[:-2]  # m's batch dims, aligned with batch
    per_b = any(d != 1 for d in lead[:-1])
    per_h = bool(lead) and lead[-1] != 1
    shape = (batch[:-1] if per_b else (1,) * len(batch[:-1])) + ((batch[-1],) if per_h else (1,) * bool(batch)) + (L, S)
    m = np.broadcast_to(m, shape).reshape(-1, batch[-1] if per_h else 1, L, S)
    if m.dtype == np.bool_:
        return MASK_BOOL, additive_mask(m)
    return MASK_FLOAT, np.ascontiguousarray(m, np.float32)


def bind(
    wl,
    query=None,
    key=None,
    value=None,
    attn_mask=None,
    dropout_p=0.0,
    is_causal=False,
    scale=None,
    enable_gqa=False,
    **extra,
):
    """(params or None when the output is empty or all zeros, inputs, PyTorch's output shape)."""
    if extra:
        raise HeteroError(f"attention: unknown argument {sorted(extra)[0]!r}; valid: {VALID}")
    if query is None or key is None or value is None:
        raise HeteroError("attention needs query, key and value")
    q, k, v = (wl.tensor(n, a, 2) for n, a in (("query", query), ("key", key), ("value", value)))
    wl.same_dtype(query=q, key=k, value=v)
    if dropout_p:
        raise HeteroError(f"attention: dropout_p={dropout_p!r} is refused: a benchmark must be deterministic (give 0)")
    if attn_mask is not None and is_causal:
        raise HeteroError("attention: attn_mask must not be set when is_causal=True (PyTorch refuses both)")
    if scale is not None and (
        isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale)
    ):  # PyTorch takes NaN and inf, but what it returns then depends on which of its kernels runs (its math path
        # folds sqrt(scale) into q and k, its CPU flash path scales q.k): there is no one answer to match
        raise HeteroError(f"attention: scale={scale!r} must be a finite number or None")
    L, E, S, Ev = q.shape[-2], q.shape[-1], k.shape[-2], v.shape[-1]
    if k.shape[-1] != E:
        raise HeteroError(f"attention: key head size {k.shape[-1]} (key {k.shape}) must equal query's {E}")
    if v.shape[-2] != S:
        raise HeteroError(f"attention: value length {v.shape[-2]} (value {v.shape}) must equal key's {S}")
    batch, hkv = _heads(q, k, v, bool(enable_gqa))
    kind, mask = (MASK_NONE, None) if attn_mask is None else _mask(attn_mask, q.dtype, batch, L, S)
    out_shape = batch + (L, Ev)
    H = batch[-1] if batch else 1
    if 0 in out_shape or S == 0:  # nothing attended: PyTorch returns zeros (or an empty tensor)
        return None, {}, out_shape
    if E == 0:  # PyTorch's scores are empty dot products, 0 whatever the scale: the case runs as E = 1 with zero
        # query and key at scale 1, which gives every backend the same 0 scores (mask added)
        q, k, scale, E = np.zeros(q.shape[:-1] + (1,), q.dtype), np.zeros(k.shape[:-1] + (1,), k.dtype), 1.0, 1
    qn = np.ascontiguousarray(np.broadcast_to(q, batch + (L, E)), np.float32).reshape(-1, H, L, E)
    kn = _kv(k, batch, hkv)
    inputs = {"query": qn, "key": kn, "value": _kv(v, batch, hkv), "attn_mask": mask, "scale": scale}
    params = dict(
        B=qn.shape[0],
        H=H,
        S=S,
        D=E,
        causal=int(bool(is_causal)),
        L=L if L != S else 0,
        Hkv=hkv if hkv != H else 0,
        Dv=Ev if Ev != E else 0,
        mask=kind,
    )
    return params, inputs, out_shape
