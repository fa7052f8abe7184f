"""attention for fpga-emu: scores = Q K^T on the systolic array, a streaming row softmax (scale and causal
mask applied there), then O = P V on the array again. The (S, S) scores live in one buffer per run."""
from __future__ import annotations

import numpy as np

from hetero import fpga_model as fm
from hetero import opencl_util as ocl
from hetero.kernels.matmul.fpga_matmul import Systolic
from hetero.workloads.attention import scale_of


def prepare(rt, pr: fm.FpgaPreset, case, inputs):
    p = case.p
    B, H, S, D = p["B"], p["H"], p["S"], p["D"]
    bh = B * H
    q, k, v = (rt.buffer(inputs[n]) for n in ("query", "key", "value"))  # (B, H, S, D)
    scores = rt.buffer(nbytes=bh * S * S * 4)  # (BH, S, S)
    o = rt.buffer(nbytes=bh * S * D * 4)
    sys = Systolic(rt, pr)
    scale = scale_of(case, inputs.get("scale"))

    def enqueue():
        e1 = sys.enqueue(q, (D, 1, S * D), k, (1, D, S * D), scores, S, S, D, bh)  # K^T: (k=d, n=j) at j*D + d
        e2 = ocl.launch(rt, sys.prg.softmax_rows_f32, (bh * S,), None, scores, np.int32(S), np.float32(scale),
                        np.int32(p["causal"]))
        e3 = sys.enqueue(scores, (S, 1, S * S), v, (D, 1, S * D), o, S, D, S, bh)
        return [e1, e2, e3]
    return enqueue, o, (B, H, S, D), fm.attention(pr, p)
