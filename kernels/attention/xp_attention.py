"""Attention for every argument PyTorch's SDPA takes (cross and decode lengths, GQA, attn_mask, a value head size),
written against an array module `xp` (CuPy on the GPU; NumPy in the tests that check it where no GPU is): the
cupy backend's path for the cases its fused kernel (flash_attention.cu) does not take.

Unfused, in float32: per batch and group of key/value heads, scores (hk, rep*L, S) = Q K^T by one batched GEMM
(cuBLAS through xp.matmul), the mask and the causal bound added, the reference's safe softmax, then P V. The
query heads that share a key/value head are consecutive (head h reads h // rep), so Q of one batch reshapes to
(Hkv, rep*L, D) without a copy. The score buffer is bounded by SCORE_BYTES, taking fewer heads a step.

Same rules as the reference (hetero.workloads.attention): IEEE arithmetic, a row whose every score is -inf has
probabilities 0, a NaN or +inf score makes its row NaN, a NaN or inf value its column (0 * inf is NaN).
"""

from __future__ import annotations

SCORE_BYTES = 1 << 30  # float32 scores held at once; 1 GiB keeps LLaMA-size prefill within a GPU's memory


def attention(xp, q, k, v, mask, causal: bool, scale: float, out) -> None:
    """out (B, H, L, Dv) float32 = SDPA of q (B, H, L, D), k (B, Hkv, S, D), v (B, Hkv, S, Dv), all float32;
    mask: additive float32 (Bm, Hm, L, S) with Bm in {1, B}, Hm in {1, H}, or None; causal: PyTorch's top-left
    torch.tril(ones(L, S))."""
    B, H, L, D = q.shape
    Hkv, S = k.shape[1], k.shape[2]
    rep = H // Hkv
    step = max(1, min(Hkv, SCORE_BYTES // max(1, 4 * rep * L * S)))  # key/value heads a step
    allowed = xp.tril(xp.ones((L, S), dtype=bool)) if causal else None
    for b in range(B):
        qb = q[b].reshape(Hkv, rep * L, D)
        ob = out[b].reshape(Hkv, rep * L, v.shape[3])
        for h0 in range(0, Hkv, step):
            hs = slice(h0, min(Hkv, h0 + step))
            scores = xp.matmul(qb[hs], k[b, hs].transpose(0, 2, 1))  # (hk, rep*L, S)
            scores *= xp.float32(scale)
            grid = scores.reshape(-1, rep, L, S)  # (hk, rep, L, S): a view, to add what is per (head, i, j)
            if mask is not None:
                grid += _mask_rows(mask, b, hs, rep, L, S)
            if allowed is not None:
                grid[:, :, ~allowed] = -xp.inf
            ob[hs] = xp.matmul(_softmax(xp, scores), v[b, hs])


def _mask_rows(mask, b: int, hs: slice, rep: int, L: int, S: int):
    """The mask's rows for batch b and key/value heads hs, shaped to broadcast over (hk, rep, L, S)."""
    m = mask[b % mask.shape[0]]  # (Hm, L, S)
    if m.shape[0] == 1:
        return m.reshape(1, 1, L, S)
    return m.reshape(-1, rep, L, S)[hs]


def _softmax(xp, scores):
    """Row softmax of (..., S) scores in place, as the reference's softmax_rows: a row that is all -inf gives 0."""
    mx = scores.max(axis=-1, keepdims=True)
    dead = xp.isneginf(mx)
    mx[dead] = 0.0
    scores -= mx
    xp.exp(scores, out=scores)
    total = scores.sum(axis=-1, keepdims=True)
    total[dead] = 1.0
    scores /= total
    return scores
