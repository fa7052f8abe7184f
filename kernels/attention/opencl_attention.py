"""attention for the opencl backend: transpose K, then one flash-style kernel with an online softmax
(attention.cl). BQ (query rows per work-item) is tuned per device like the GEMM's tile."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hetero import opencl_util as ocl
from hetero.workloads.attention import scale_of

SOURCE = Path(__file__).with_name("attention.cl")
CANDIDATES = (dict(BQ=4), dict(BQ=2), dict(BQ=8))
TUNE_SHAPE = (1, 4, 512, 64)  # (B, H, S, D)


def _vw(D: int) -> int:
    return 8 if D % 8 == 0 else 4 if D % 4 == 0 else 1


class Attention:
    """O = softmax(Q K^T * scale [+ causal mask]) V on (BH, S, D) buffers."""

    def __init__(self, rt: ocl.Runtime, BH: int, S: int, D: int, config: dict | None = None):
        self.rt, self.BH, self.S, self.D = rt, BH, S, D
        self.BQ = (config or tuned(rt))["BQ"]
        self.Sp = -(-S // 8) * 8
        self.prg = rt.program(SOURCE, dict(D=D, BQ=self.BQ, VW=_vw(D)))
        self.kt = rt.buffer(nbytes=BH * D * self.Sp * 4)
        self.poison = rt.buffer(nbytes=BH * D * 4)  # (BH, D): NaN where a column of V is not finite, else 0

    def enqueue(self, q, k, v, o, scale: float, causal: bool) -> list:
        S, Sp = np.int32(self.S), np.int32(self.Sp)
        et = ocl.launch(self.rt, self.prg.transpose_k_f32, (self.Sp, self.D, self.BH), None, k, self.kt, S, Sp)
        ep = ocl.launch(self.rt, self.prg.value_poison_f32, (self.BH,), (1,), v, self.poison, S)
        ea = ocl.launch(self.rt, self.prg.attention_f32, (-(-self.S // self.BQ), self.BH), (1, 1),
                        q, self.kt, v, self.poison, o, S, Sp, np.float32(scale), np.int32(bool(causal)))
        return [et, ep, ea]


def _time_config(rt, cfg, reps=3) -> float:
    B, H, S, D = TUNE_SHAPE
    x = np.random.default_rng(0).standard_normal((B * H, S, D), np.float32)
    q, k, v, o = rt.buffer(x), rt.buffer(x), rt.buffer(x), rt.buffer(nbytes=x.nbytes)
    att = Attention(rt, B * H, S, D, cfg)
    att.enqueue(q, k, v, o, 0.125, False)[-1].wait()
    return min(ocl.event_seconds(att.enqueue(q, k, v, o, 0.125, False)) for _ in range(reps))


def tuned(rt: ocl.Runtime, path=None) -> dict:
    key = f"{ocl.device_key(rt.device)}|attention_f32|v1"
    saved = ocl.load_tuning(path).get(key)
    if isinstance(saved, dict) and saved.get("config") in [dict(c) for c in CANDIDATES]:
        return saved["config"]
    times = [_time_config(rt, dict(c)) for c in CANDIDATES]
    best = dict(CANDIDATES[int(np.argmin(times))])
    ocl.save_tuning(key, {"config": best, "ms": [round(t * 1e3, 2) for t in times], "shape": list(TUNE_SHAPE)},
                    path)
    return best


def prepare(rt: ocl.Runtime, case, inputs: dict):
    p = case.p
    B, H, S, D = p["B"], p["H"], p["S"], p["D"]
    q, k, v = (rt.buffer(inputs[n]) for n in ("query", "key", "value"))  # (B, H, S, D)
    o = rt.buffer(nbytes=B * H * S * D * 4)
    att = Attention(rt, B * H, S, D)
    scale = scale_of(case, inputs.get("scale"))
    return (lambda: att.enqueue(q, k, v, o, scale, bool(p["causal"]))), o, (B, H, S, D)
