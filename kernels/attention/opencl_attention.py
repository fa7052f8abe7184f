"""attention for the opencl backend: transpose K, then one flash-style kernel with an online softmax
(attention.cl). BQ (query rows per work-item) is tuned per device like the GEMM's tile."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hetero import opencl_util as ocl
from hetero.kernels.attention.numba_decode import DECODE_ROWS, stack_mask
from hetero.workloads.attention import scale_of, shape_of

SOURCE = Path(__file__).with_name("attention.cl")
CANDIDATES = (dict(BQ=4), dict(BQ=2), dict(BQ=8))
TUNE_SHAPE = (1, 4, 512, 64)  # (B, H, S, D)


def _vw(D: int) -> int:
    return 8 if D % 8 == 0 else 4 if D % 4 == 0 else 1


class Attention:
    """O (BH, L, Dv) = softmax(Q K^T * scale [+ mask] [+ causal mask]) V; Q (BH, L, D), K (BHkv, S, D),
    V (BHkv, S, Dv); query head h reads key/value head h / (H / Hkv)."""

    def __init__(
        self,
        rt: ocl.Runtime,
        BH: int,
        S: int,
        D: int,
        config: dict | None = None,
        L: int | None = None,
        H: int = 1,
        Hkv: int = 1,
        Dv: int | None = None,
    ):
        self.rt, self.BH, self.S, self.D = rt, BH, S, D
        self.L, self.H, self.Hkv, self.Dv = L or S, H, Hkv, Dv or D
        self.BQ = (config or tuned(rt))["BQ"]
        self.Sp = -(-S // 8) * 8
        self.prg = rt.program(SOURCE, dict(D=D, DVAL=self.Dv, BQ=self.BQ, VW=_vw(self.Dv)))
        self.bhk = BH // H * Hkv
        self.kt = rt.buffer(nbytes=self.bhk * D * self.Sp * 4)
        self.poison = rt.buffer(nbytes=self.bhk * self.Dv * 4)  # (BHkv, Dv): NaN where a column of V is not finite
        self.no_mask = rt.buffer(np.zeros(1, np.float32))

    def enqueue(self, q, k, v, o, scale: float, causal: bool, mask=None, mask_shape=(1, 1)) -> list:
        """mask: a buffer (Bm, Hm, L, S) or None; mask_shape: its (Bm, Hm), each 1 or the full count."""
        S, Sp, L = np.int32(self.S), np.int32(self.Sp), np.int32(self.L)
        ls = self.L * self.S
        hm_stride = ls if mask_shape[1] > 1 else 0
        bm_stride = mask_shape[1] * ls if mask_shape[0] > 1 else 0
        if self.D % 8 == 0:
            et = ocl.launch(
                self.rt, self.prg.transpose8_k_f32, (self.Sp // 8, self.D // 8, self.bhk), None, k, self.kt, S, Sp
            )
        else:
            et = ocl.launch(self.rt, self.prg.transpose_k_f32, (self.Sp, self.D, self.bhk), None, k, self.kt, S, Sp)
        ep = ocl.launch(self.rt, self.prg.value_poison_f32, (self.bhk,), (1,), v, self.poison, S)
        ea = ocl.launch(
            self.rt,
            self.prg.attention_f32,
            (-(-self.L // self.BQ), self.BH),
            (1, 1),
            q,
            self.kt,
            v,
            self.poison,
            o,
            self.no_mask if mask is None else mask,
            L,
            S,
            Sp,
            np.int32(self.H),
            np.int32(self.Hkv),
            np.float32(scale),
            np.int32(bool(causal)),
            np.int32(mask is not None),
            np.int64(bm_stride),
            np.int64(hm_stride),
        )
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
    ocl.save_tuning(key, {"config": best, "ms": [round(t * 1e3, 2) for t in times], "shape": list(TUNE_SHAPE)}, path)
    return best


def prepare(rt: ocl.Runtime, case, inputs: dict):
    B, H, Hkv, L, S, D, Dv = shape_of(case.p)
    q, k, v = (rt.buffer(inputs[n]) for n in ("query", "key", "value"))  # (B, H, L, D), (B, Hkv, S, D|Dv)
    o = rt.buffer(nbytes=B * H * L * Dv * 4)
    m = inputs.get("attn_mask")  # (Bm, Hm, L, S) additive, -inf where masked out
    config, Hq, Lq = None, H, L
    if not case.p["causal"] and H // Hkv * L <= DECODE_ROWS:
        # Decoding: the H/Hkv query heads of a key/value head become the rows of one work-item, (B, Hkv, rows, D)
        # is the same memory as (B, H, L, D), and BQ fits the rows: K and V are read once, no row is padding.
        Hq, Lq = Hkv, H // Hkv * L
        config = dict(BQ=1 << (Lq - 1).bit_length())
        m = stack_mask(m, H, Hkv, L)
    att = Attention(rt, B * Hq, S, D, config, L=Lq, H=Hq, Hkv=Hkv, Dv=Dv)
    scale = scale_of(case, inputs.get("scale"))
    mbuf, mshape = (None, (1, 1)) if m is None else (rt.buffer(np.ascontiguousarray(m, np.float32)), m.shape[:2])
    return (lambda: att.enqueue(q, k, v, o, scale, bool(case.p["causal"]), mbuf, mshape)), o, (B, H, L, Dv)
