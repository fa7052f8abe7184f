"""attention: scaled-dot-product attention as torch.nn.functional.scaled_dot_product_attention(query, key, value,
attn_mask, dropout_p=0, is_causal, scale, enable_gqa) defines it.

Case layout (what every backend receives): query (B, H, L, D), key (B, Hkv, S, D), value (B, Hkv, S, Dv),
out (B, H, L, Dv). Query head h reads key/value head h // (H // Hkv) (grouped-query attention; Hkv = 1 is
multi-query). attn_mask, when given, is additive float32 (Bm, Hm, L, S) with Bm in {1, B}, Hm in {1, H}:
a boolean mask arrives as 0 where True (attend) and -inf where False. is_causal is PyTorch's top-left mask
torch.tril(ones(L, S)): query i sees keys j <= i, whatever L and S are. A query row whose every score is -inf
gives 0, as PyTorch's kernels do.

Params: dims B, H, S (key length), D (query/key head size) as before; options L (query length, 0 = S),
Hkv (key/value heads, 0 = H), Dv (value head size, 0 = D), mask (0 none, 1 boolean, 2 additive float).
How PyTorch-style arguments (any batch dims, 3-D inputs, broadcasting) become this layout: attention_args.py.
"""

from __future__ import annotations

import math

import numpy as np

from hetero.errors import HeteroError
from hetero.workloads.attention_args import MASK_BOOL, MASK_FLOAT, MASK_NONE, additive_mask, bind
from hetero.workloads.base import Case, Preset, Workload

_GPU = frozenset({"gpu"})
_QUICK = frozenset({"quick"})


def _p(b, h, s, d, causal=0, **opts):
    return dict(B=b, H=h, S=s, D=d, causal=causal, **opts)


def shape_of(p: dict) -> tuple[int, int, int, int, int, int, int]:
    """(B, H, Hkv, L, S, D, Dv) with the 0 = 'same as' options resolved."""
    return (p["B"], p["H"], p.get("Hkv") or p["H"], p.get("L") or p["S"], p["S"], p["D"], p.get("Dv") or p["D"])


def visible_pairs(L: int, S: int, causal: bool) -> int:
    """Number of (query, key) pairs a row attends: L*S, or sum over i of min(i + 1, S) under the causal mask."""
    if not causal:
        return L * S
    n = min(L, S)
    return n * (n + 1) // 2 + (L - n) * S


class Attention(Workload):
    name = "attention"
    dims = ("B", "H", "S", "D")
    options = {"causal": 0, "L": 0, "Hkv": 0, "Dv": 0, "mask": 0}
    description = "softmax(Q K^T * scale [+ mask]) V: Q (B, H, L, D), K (B, Hkv, S, D), V (B, Hkv, S, Dv)"
    presets = (
        Preset("bert-base-512", _p(4, 12, 512, 64), "BERT-base: 12 heads of 64, 512 tokens, batch 4"),
        Preset("gpt2-512-causal", _p(4, 12, 512, 64, 1), "GPT-2 small: 12 heads of 64, 512 tokens, batch 4"),
        Preset("gpt2-2048", _p(1, 12, 2048, 64), "GPT-2-style 12 x 64 heads at 2048 tokens, non-causal"),
        Preset("gpt2-2048-causal", _p(1, 12, 2048, 64, 1), "GPT-2-style 12 x 64 heads at 2048 tokens"),
        # Decoding one token against a KV cache: the dominant inference workload, memory-bound on K and V.
        Preset(
            "llama2-7b-decode-b1",
            _p(1, 32, 4096, 128, L=1),
            "LLaMA-2-7B decode: 32 heads of 128, one query against a 4096-token KV cache, batch 1",
        ),
        Preset("llama2-7b-decode-b8", _p(8, 32, 4096, 128, L=1), "LLaMA-2-7B decode at batch 8 (4096-token KV cache)"),
        Preset(
            "llama3-8b-decode",
            _p(1, 32, 8192, 128, L=1, Hkv=8),
            "LLaMA-3-8B decode: 32 query / 8 key-value heads (GQA) of 128, 8192-token KV cache",
        ),
        Preset(
            "llama3-8b-prefill",
            _p(1, 32, 8192, 128, 1, Hkv=8),
            "LLaMA-3-8B prefill: 32/8 heads (GQA) of 128, 8192 tokens, causal",
            _GPU,
        ),
        Preset(
            "whisper-base-cross",
            _p(4, 8, 1500, 64, L=448),
            "Whisper-base decoder cross-attention: 448 text queries on 1500 audio frames, 8 heads of 64",
        ),
        Preset(
            "t5-base-cross-mask",
            _p(8, 12, 512, 64, L=128, mask=MASK_BOOL),
            "T5-base cross-attention: 128 decoder queries on 512 padded encoder tokens (boolean mask)",
        ),
        # FlashAttention's benchmark: model dim 2048, head dim 128 (16 heads), batch*seq = 16k tokens.
        Preset("fa-bench-2k", _p(8, 16, 2048, 128), "FlashAttention benchmark, seq 2048, head dim 128", _GPU),
        Preset("fa-bench-2k-causal", _p(8, 16, 2048, 128, 1), "FlashAttention benchmark, causal", _GPU),
        Preset("fa-bench-8k-causal", _p(2, 16, 8192, 128, 1), "FlashAttention benchmark, seq 8192", _GPU),
        Preset("llama7b-4k-causal", _p(1, 32, 4096, 128, 1), "LLaMA-7B: 32 heads of 128, 4096 tokens", _GPU),
        Preset("quick-odd", _p(2, 3, 77, 24), "tiny, S not a multiple of any block", _QUICK),
        Preset("quick-odd-causal", _p(1, 2, 129, 40, 1), "tiny causal, S = 2^7 + 1", _QUICK),
        Preset("quick-decode-gqa", _p(2, 6, 300, 32, L=1, Hkv=2), "tiny decode, 6 query / 2 kv heads", _QUICK),
        Preset(
            "quick-cross-mask",
            _p(2, 2, 37, 16, L=9, Dv=24, mask=MASK_BOOL),
            "tiny cross-attention, boolean mask, value head 24",
            _QUICK,
        ),
        Preset(
            "quick-causal-wide",
            _p(1, 4, 70, 16, 1, L=20, Hkv=1),
            "tiny causal with L < S (top-left), multi-query",
            _QUICK,
        ),
        Preset("quick-float-mask", _p(1, 2, 33, 8, L=40, mask=MASK_FLOAT), "tiny additive mask, L > S", _QUICK),
    )

    FEATURES = {
        "cross": "query length L != key length S",
        "gqa": "fewer key/value heads than query heads",
        "mask": "attn_mask",
        "value-dim": "value head size Dv != D",
    }

    def features(self, p: dict) -> frozenset[str]:
        B, H, Hkv, L, S, D, Dv = shape_of(p)
        used = {"cross": L != S, "gqa": Hkv != H, "mask": bool(p.get("mask")), "value-dim": Dv != D}
        return frozenset(k for k, v in used.items() if v)

    def validate(self, p: dict) -> None:
        super().validate(p)
        for k in ("L", "Hkv", "Dv"):
            if p[k] < 0:
                raise HeteroError(f"attention: {k}={p[k]} must be >= 1 (or 0: the default)")
        if p["causal"] not in (0, 1):
            raise HeteroError(f"attention: causal={p['causal']} must be 0 or 1")
        if p["mask"] not in (MASK_NONE, MASK_BOOL, MASK_FLOAT):
            raise HeteroError(f"attention: mask={p['mask']} must be 0 (none), 1 (boolean) or 2 (additive float)")
        if p["mask"] and p["causal"]:
            raise HeteroError("attention: attn_mask must not be given with is_causal (PyTorch refuses both)")
        B, H, Hkv, *_ = shape_of(p)
        if H % Hkv:
            raise HeteroError(f"attention: Hkv={Hkv} key/value heads must divide H={H} query heads")

    def make_inputs(self, case: Case, seed: int = 0) -> dict[str, np.ndarray]:
        B, H, Hkv, L, S, D, Dv = shape_of(case.p)
        rng, dt = np.random.default_rng(seed), case.dtype
        inputs = {
            "query": self.random(rng, (B, H, L, D), dt),
            "key": self.random(rng, (B, Hkv, S, D), dt),
            "value": self.random(rng, (B, Hkv, S, Dv), dt),
            "attn_mask": None,
        }
        if case.p["mask"] == MASK_BOOL:  # key padding: batch b attends its first n_b >= 1 keys, (B, 1, L, S)
            n = rng.integers(1, S + 1, B)
            keep = np.broadcast_to((np.arange(S) < n[:, None])[:, None, None, :], (B, 1, L, S))
            inputs["attn_mask"] = additive_mask(keep)
        elif case.p["mask"] == MASK_FLOAT:  # a per-head additive bias, (1, H, L, S), as ALiBi or T5's buckets
            inputs["attn_mask"] = self.random(rng, (1, H, L, S), dt)
        return inputs

    def reference(self, case: Case, inputs, dtype=np.float64) -> np.ndarray:
        """The definition every backend matches, NaN and inf included (IEEE arithmetic, as PyTorch's math
        attention), with PyTorch's safe softmax: a row whose every score is -inf (all keys masked out) has
        probabilities 0. Otherwise a row is NaN when a score it sees is NaN or +inf; a NaN or inf value makes its
        column non-finite in every row of its head, masked or not (masked probabilities are 0, 0 * inf = NaN)."""
        B, H, Hkv, L, S, D, Dv = shape_of(case.p)
        q, k, v = (inputs[n].astype(dtype, copy=False) for n in ("query", "key", "value"))
        mask = inputs.get("attn_mask")
        scale = scale_of(case, inputs.get("scale"))
        out = np.empty((B, H, L, Dv), dtype)
        causal = np.tril(np.ones((L, S), bool)) if case.p["causal"] else None
        rep = H // Hkv
        for b in range(B):  # one (L, S) score matrix at a time keeps memory at L*S per head
            for h in range(H):
                scores = (q[b, h] @ k[b, h // rep].T) * scale  # (L, S)
                if mask is not None:
                    scores += mask[b % mask.shape[0], h % mask.shape[1]]
                if causal is not None:
                    scores[~causal] = -np.inf
                out[b, h] = softmax_rows(scores) @ v[b, h // rep]  # (L, Dv)
        return out

    def out_shape(self, p: dict) -> tuple[int, ...]:
        B, H, _, L, _, _, Dv = shape_of(p)
        return (B, H, L, Dv)

    def flops(self, p: dict) -> float:
        """2*B*H*P*(D + Dv): QK^T and PV over the P attended (query, key) pairs. P = L*S, or under is_causal
        sum_i min(i + 1, S); for L == S that is taken as L*S/2, as FlashAttention's benchmark counts."""
        B, H, _, L, S, D, Dv = shape_of(p)
        pairs = L * S / 2 if p["causal"] and L == S else visible_pairs(L, S, bool(p["causal"]))
        return 2.0 * B * H * pairs * (D + Dv)

    def bytes_moved(self, p: dict, itemsize: int) -> float:
        """(B*H*L*D + B*Hkv*S*(D + Dv) + B*H*L*Dv) * itemsize + mask: Q, K, V read once, O written once (a fused
        kernel's compulsory traffic; GQA reads each key/value head once for its H/Hkv query heads). The mask is
        the presets' layout: boolean (B, 1, L, S) at one byte, additive (1, H, L, S) at itemsize."""
        B, H, Hkv, L, S, D, Dv = shape_of(p)
        mask = {MASK_NONE: 0, MASK_BOOL: B * L * S, MASK_FLOAT: H * L * S * itemsize}[p.get("mask", 0)]
        return float(B * H * L * D + B * Hkv * S * (D + Dv) + B * H * L * Dv) * itemsize + mask

    def workspace_elems(self, p: dict) -> float:
        """B*H*L*S: fpga-emu's score buffer (the reference holds one (L, S) float64 matrix at a time)."""
        B, H, _, L, S, _, _ = shape_of(p)
        return float(B * H * L * S)

    def call(self, **kwargs):
        return bind(self, **kwargs)


def softmax_rows(scores: np.ndarray) -> np.ndarray:
    """Row softmax of (L, S) scores in place; a row that is all -inf becomes 0 (PyTorch's convention)."""
    mx = scores.max(axis=1, keepdims=True) if scores.shape[1] else np.zeros((scores.shape[0], 1))
    dead = ~np.isfinite(mx) & (mx < 0)
    mx[dead] = 0.0
    scores -= mx
    np.exp(scores, out=scores)
    total = scores.sum(axis=1, keepdims=True)
    total[dead] = 1.0
    scores /= total
    return scores


def scale_of(case: Case, scale: float | None) -> float:
    """The softmax scale every backend uses: the caller's (inputs["scale"]), else 1/sqrt(D) as in PyTorch."""
    return 1.0 / math.sqrt(case.p["D"]) if scale is None else float(scale)
