"""attention for fpga-emu: scores = Q K^T on the systolic array, a streaming row softmax (scale, mask and causal
mask applied there), then O = P V on the array again. The (L, S) scores live in one buffer per run.

Grouped-query attention costs nothing extra here: the H/Hkv query heads that share a key/value head are
consecutive in Q (B, H, L, D), so Q is read as (B*Hkv, (H/Hkv)*L, D) and each GEMM pair runs once per key/value
head, streaming K and V once."""

from __future__ import annotations

import numpy as np

from hetero import fpga_model as fm
from hetero import opencl_util as ocl
from hetero.kernels.matmul.fpga_matmul import Systolic
from hetero.workloads.attention import scale_of, shape_of


def prepare(rt, pr: fm.FpgaPreset, case, inputs):
    B, H, Hkv, L, S, D, Dv = shape_of(case.p)
    bhk, rep = B * Hkv, H // Hkv
    R = rep * L  # score rows per key/value head
    q, k, v = (rt.buffer(inputs[n]) for n in ("query", "key", "value"))  # (B, H, L, D), (B, Hkv, S, D|Dv)
    scores = rt.buffer(nbytes=bhk * R * S * 4)  # (B*Hkv, R, S)
    o = rt.buffer(nbytes=bhk * R * Dv * 4)  # (B*Hkv, R, Dv) = (B, H, L, Dv)
    m = inputs.get("attn_mask")  # (Bm, Hm, L, S), -inf where masked out
    mbuf = rt.buffer(np.zeros(1, np.float32) if m is None else np.ascontiguousarray(m, np.float32))
    mh = L * S if m is not None and m.shape[1] > 1 else 0
    mb = (m.shape[1] * L * S) if m is not None and m.shape[0] > 1 else 0
    sys = Systolic(rt, pr)
    scale = scale_of(case, inputs.get("scale"))
    i32 = np.int32

    def enqueue():
        e1 = sys.enqueue(q, (D, 1, R * D), k, (1, D, S * D), scores, R, S, D, bhk)  # K^T: (k=d, n=j) at j*D + d
        e2 = ocl.launch(
            rt,
            sys.prg.softmax_rows_f32,
            (bhk * R,),
            None,
            scores,
            i32(L),
            i32(S),
            i32(rep),
            i32(Hkv),
            np.float32(scale),
            i32(case.p["causal"]),
            mbuf,
            i32(m is not None),
            np.int64(mb),
            np.int64(mh),
        )
        e3 = sys.enqueue(scores, (S, 1, R * S), v, (Dv, 1, S * Dv), o, R, Dv, S, bhk)
        return [e1, e2, e3]

    return enqueue, o, (B, H, L, Dv), fm.attention(pr, case.p)
