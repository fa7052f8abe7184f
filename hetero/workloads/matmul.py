"""matmul: C = A @ B, A (M, K), B (K, N), C (M, N). Follows torch.matmul(input, other) for 2-D inputs."""
from __future__ import annotations

import numpy as np

from hetero.errors import HeteroError
from hetero.workloads.base import Case, Preset, Workload

_GPU = frozenset({"gpu"})


class Matmul(Workload):
    name = "matmul"
    dims = ("M", "N", "K")
    description = "C = A @ B (M x K times K x N)"
    presets = (
        Preset("square-1024", dict(M=1024, N=1024, K=1024), "square GEMM, the usual BLAS yardstick"),
        Preset("gpt2-mlp-up", dict(M=2048, N=3072, K=768), "GPT-2 small MLP up-projection, 2 x 1024 tokens"),
        Preset("bert-qkv", dict(M=2048, N=2304, K=768), "BERT-base fused QKV projection, 16 x 128 tokens"),
        Preset("deepbench-1760x128", dict(M=1760, N=128, K=1760), "DeepBench training GEMM M=K=1760, N=128"),
        Preset("deepbench-2560x64", dict(M=2560, N=64, K=2560), "DeepBench training GEMM M=K=2560, N=64",
               frozenset({"extra"})),
        Preset("llama7b-mlp-up", dict(M=4096, N=11008, K=4096), "LLaMA-7B MLP up-projection, 4096 tokens", _GPU),
        Preset("deepbench-7680x24000", dict(M=7680, N=24000, K=2560), "DeepBench training GEMM", _GPU),
        Preset("square-8192", dict(M=8192, N=8192, K=8192), "square GEMM at GPU scale", _GPU),
        Preset("quick-odd", dict(M=67, N=45, K=93), "tiny, no size a multiple of any tile", frozenset({"quick"})),
        Preset("quick-128", dict(M=128, N=96, K=160), "tiny", frozenset({"quick"})),
    )

    def make_inputs(self, case: Case, seed: int = 0) -> dict[str, np.ndarray]:
        p, rng = case.p, np.random.default_rng(seed)
        # Scaled so C's entries are O(1) whatever K is: low-precision dtypes stay in range.
        return {"a": self.random(rng, (p["M"], p["K"]), case.dtype, p["K"] ** -0.5),
                "b": self.random(rng, (p["K"], p["N"]), case.dtype)}

    def reference(self, case: Case, inputs, dtype=np.float64) -> np.ndarray:
        return inputs["a"].astype(dtype) @ inputs["b"].astype(dtype)

    def out_shape(self, p: dict) -> tuple[int, ...]:
        return (p["M"], p["N"])

    def flops(self, p: dict) -> float:
        """2*M*N*K: one multiply and one add per (m, n, k)."""
        return 2.0 * p["M"] * p["N"] * p["K"]

    def bytes_moved(self, p: dict, itemsize: int) -> float:
        """(M*K + K*N + M*N) * itemsize: each operand read once, C written once (the compulsory traffic)."""
        return float(p["M"] * p["K"] + p["K"] * p["N"] + p["M"] * p["N"]) * itemsize

    def from_arrays(self, a=None, b=None, **extra):
        if extra:
            raise HeteroError(f"matmul: unknown argument {sorted(extra)[0]!r}; valid: a, b")
        if a is None or b is None:
            raise HeteroError("matmul needs a and b")
        a, b = self.array("a", a, 2), self.array("b", b, 2)
        if a.shape[1] != b.shape[0]:
            raise HeteroError(f"matmul: a is {a.shape} and b is {b.shape}; a.shape[1] must equal b.shape[0]")
        return dict(M=a.shape[0], N=b.shape[1], K=a.shape[1]), {"a": a, "b": b}
