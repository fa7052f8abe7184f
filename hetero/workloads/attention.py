"""attention: multi-head scaled-dot-product attention, layout (B, H, S, D), as
torch.nn.functional.scaled_dot_product_attention(query, key, value, is_causal=..., scale=...).

Self-attention shapes (query and key share S). The causal mask is PyTorch's: query i sees keys j <= i.
"""
from __future__ import annotations

import math

import numpy as np

from hetero.errors import HeteroError
from hetero.workloads.base import Case, Preset, Workload

_GPU = frozenset({"gpu"})


def _p(b, h, s, d, causal=0):
    return dict(B=b, H=h, S=s, D=d, causal=causal)


class Attention(Workload):
    name = "attention"
    dims = ("B", "H", "S", "D")
    options = {"causal": 0}
    description = "softmax(Q K^T * scale [+ causal mask]) V per head, Q/K/V (B, H, S, D)"
    presets = (
        Preset("bert-base-512", _p(4, 12, 512, 64), "BERT-base: 12 heads of 64, 512 tokens, batch 4"),
        Preset("gpt2-512-causal", _p(4, 12, 512, 64, 1), "GPT-2 small: 12 heads of 64, 512 tokens, batch 4"),
        Preset("gpt2-2048", _p(1, 12, 2048, 64), "GPT-2-style 12 x 64 heads at 2048 tokens, non-causal"),
        Preset("gpt2-2048-causal", _p(1, 12, 2048, 64, 1), "GPT-2-style 12 x 64 heads at 2048 tokens"),
        # FlashAttention's benchmark: model dim 2048, head dim 128 (16 heads), batch*seq = 16k tokens.
        Preset("fa-bench-2k", _p(8, 16, 2048, 128), "FlashAttention benchmark, seq 2048, head dim 128", _GPU),
        Preset("fa-bench-2k-causal", _p(8, 16, 2048, 128, 1), "FlashAttention benchmark, causal", _GPU),
        Preset("fa-bench-8k-causal", _p(2, 16, 8192, 128, 1), "FlashAttention benchmark, seq 8192", _GPU),
        Preset("llama7b-4k-causal", _p(1, 32, 4096, 128, 1), "LLaMA-7B: 32 heads of 128, 4096 tokens", _GPU),
        Preset("quick-odd", _p(2, 3, 77, 24), "tiny, S not a multiple of any block", frozenset({"quick"})),
        Preset("quick-odd-causal", _p(1, 2, 129, 40, 1), "tiny causal, S = 2^7 + 1", frozenset({"quick"})),
    )

    def validate(self, p: dict) -> None:
        super().validate(p)
        if p["causal"] not in (0, 1):
            raise HeteroError(f"attention: causal={p['causal']} must be 0 or 1")

    def make_inputs(self, case: Case, seed: int = 0) -> dict[str, np.ndarray]:
        p, rng = case.p, np.random.default_rng(seed)
        shape = (p["B"], p["H"], p["S"], p["D"])
        return {n: self.random(rng, shape, case.dtype) for n in ("query", "key", "value")}

    def reference(self, case: Case, inputs, dtype=np.float64) -> np.ndarray:
        """The definition every backend matches, NaN and inf included (IEEE arithmetic, as PyTorch's math
        attention): a row is NaN when a score it sees is NaN or +inf, or all are -inf; a NaN or inf value makes
        its column non-finite in every row of its head, masked or not (masked probabilities are 0, 0 * inf = NaN)."""
        q, k, v = (inputs[n].astype(dtype, copy=False) for n in ("query", "key", "value"))
        scale = scale_of(case, inputs.get("scale"))
        out = np.empty(q.shape, dtype)
        s = q.shape[2]
        mask = np.triu(np.ones((s, k.shape[2]), bool), 1) if case.p["causal"] else None
        for b in range(q.shape[0]):  # one (S, S) score matrix at a time keeps memory at S^2 per head
            for h in range(q.shape[1]):
                scores = (q[b, h] @ k[b, h].T) * scale  # (S, S)
                if mask is not None:
                    scores[mask] = -np.inf
                scores -= scores.max(axis=1, keepdims=True)
                np.exp(scores, out=scores)
                scores /= scores.sum(axis=1, keepdims=True)
                out[b, h] = scores @ v[b, h]  # (S, D)
        return out

    def out_shape(self, p: dict) -> tuple[int, ...]:
        return (p["B"], p["H"], p["S"], p["D"])

    def flops(self, p: dict) -> float:
        """4*B*H*S^2*D (two GEMMs, QK^T and PV), halved when causal, as FlashAttention's benchmark counts."""
        f = 4.0 * p["B"] * p["H"] * p["S"] ** 2 * p["D"]
        return f / 2 if p["causal"] else f

    def bytes_moved(self, p: dict, itemsize: int) -> float:
        """4*B*H*S*D*itemsize: Q, K, V read once and O written once (a fused kernel's compulsory traffic)."""
        return 4.0 * p["B"] * p["H"] * p["S"] * p["D"] * itemsize

    def workspace_elems(self, p: dict) -> float:
        """B*H*S*S: fpga-emu's score buffer (the reference holds one (S, S) float64 matrix at a time)."""
        return float(p["B"] * p["H"] * p["S"] * p["S"])

    def from_arrays(self, query=None, key=None, value=None, is_causal=False, scale=None, **extra):
        if extra:
            raise HeteroError(f"attention: unknown argument {sorted(extra)[0]!r}; "
                              "valid: query, key, value, is_causal, scale")
        if query is None or key is None or value is None:
            raise HeteroError("attention needs query, key and value")
        q, k, v = (self.array(n, a, 4) for n, a in (("query", query), ("key", key), ("value", value)))
        if not (q.shape == k.shape == v.shape):
            raise HeteroError(f"attention: query {q.shape}, key {k.shape} and value {v.shape} must have the same "
                              "(B, H, S, D) shape")
        if scale is not None and not (isinstance(scale, (int, float)) and math.isfinite(scale)):
            raise HeteroError(f"attention: scale={scale!r} must be a finite number or None")
        params = dict(zip(self.dims, q.shape), causal=int(bool(is_causal)))
        return params, {"query": q, "key": k, "value": v, "scale": scale}


def scale_of(case: Case, scale: float | None) -> float:
    """The softmax scale every backend uses: the caller's (inputs["scale"]), else 1/sqrt(D) as in PyTorch."""
    return 1.0 / math.sqrt(case.p["D"]) if scale is None else float(scale)
