"""matmul: C = A @ B as torch.matmul(input, other): 1-D, 2-D and N-D operands with broadcast batch dims.

Case layout (what every backend receives): a (batch, M, K), b (batch, K, N) -> (batch, M, N); batch = 1 (the
default) is the plain 2-D GEMM with a (M, K), b (K, N). How torch.matmul's operands become this: matmul_args.py
(a vector gains a unit dim that the output drops; an `other` without batch folds the batch into M, as PyTorch
does; other broadcasts are materialised).
"""

from __future__ import annotations

import numpy as np

from hetero.errors import HeteroError
from hetero.workloads.base import Case, Preset, Workload

_GPU = frozenset({"gpu"})


class Matmul(Workload):
    name = "matmul"
    dims = ("M", "N", "K")
    options = {"batch": 1}
    description = "C = A @ B (M x K times K x N), `batch` independent products"
    presets = (
        Preset("square-1024", dict(M=1024, N=1024, K=1024), "square GEMM, the usual BLAS yardstick"),
        Preset("gpt2-mlp-up", dict(M=2048, N=3072, K=768), "GPT-2 small MLP up-projection, 2 x 1024 tokens"),
        Preset("bert-qkv", dict(M=2048, N=2304, K=768), "BERT-base fused QKV projection, 16 x 128 tokens"),
        Preset("deepbench-1760x128", dict(M=1760, N=128, K=1760), "DeepBench training GEMM M=K=1760, N=128"),
        Preset(
            "deepbench-2560x64",
            dict(M=2560, N=64, K=2560),
            "DeepBench training GEMM M=K=2560, N=64",
            frozenset({"extra"}),
        ),
        Preset("llama7b-mlp-up", dict(M=4096, N=11008, K=4096), "LLaMA-7B MLP up-projection, 4096 tokens", _GPU),
        Preset("deepbench-7680x24000", dict(M=7680, N=24000, K=2560), "DeepBench training GEMM", _GPU),
        Preset("square-8192", dict(M=8192, N=8192, K=8192), "square GEMM at GPU scale", _GPU),
        Preset("quick-odd", dict(M=67, N=45, K=93), "tiny, no size a multiple of any tile", frozenset({"quick"})),
        Preset("quick-128", dict(M=128, N=96, K=160), "tiny", frozenset({"quick"})),
        Preset(
            "bert-attn-scores",
            dict(M=512, N=512, K=64, batch=48),
            "BERT-base attention scores Q K^T as a batched matmul: 4 x 12 heads, 512 tokens, head 64",
        ),
        Preset("quick-batched", dict(M=13, N=7, K=21, batch=3), "tiny batched", frozenset({"quick"})),
    )

    FEATURES = {"batch": "batched operands (batch > 1)"}

    def features(self, p: dict) -> frozenset[str]:
        return frozenset({"batch"}) if p.get("batch", 1) > 1 else frozenset()

    def validate(self, p: dict) -> None:
        super().validate(p)
        if p.get("batch", 1) < 1:
            raise HeteroError(f"matmul: batch={p['batch']} must be >= 1")

    def _shapes(self, p: dict) -> tuple[tuple, tuple, tuple]:
        lead = (p.get("batch", 1),) if p.get("batch", 1) > 1 else ()
        return lead + (p["M"], p["K"]), lead + (p["K"], p["N"]), lead + (p["M"], p["N"])

    def make_inputs(self, case: Case, seed: int = 0) -> dict[str, np.ndarray]:
        p, rng = case.p, np.random.default_rng(seed)
        a_shape, b_shape, _ = self._shapes(p)
        # Scaled so C's entries are O(1) whatever K is: low-precision dtypes stay in range.
        return {"a": self.random(rng, a_shape, case.dtype, p["K"] ** -0.5), "b": self.random(rng, b_shape, case.dtype)}

    def reference(self, case: Case, inputs, dtype=np.float64) -> np.ndarray:
        return np.matmul(inputs["a"].astype(dtype), inputs["b"].astype(dtype))

    def out_shape(self, p: dict) -> tuple[int, ...]:
        return self._shapes(p)[2]

    def flops(self, p: dict) -> float:
        """2*batch*M*N*K: one multiply and one add per (m, n, k) of each product."""
        return 2.0 * p.get("batch", 1) * p["M"] * p["N"] * p["K"]

    def bytes_moved(self, p: dict, itemsize: int) -> float:
        """batch*(M*K + K*N + M*N) * itemsize: each operand read once, C written once (the compulsory traffic)."""
        return float(p.get("batch", 1) * (p["M"] * p["K"] + p["K"] * p["N"] + p["M"] * p["N"])) * itemsize

    def call(self, **kwargs):
        from hetero.workloads.matmul_args import bind

        return bind(self, **kwargs)
