"""PyTorch as the oracle for the workloads' references (tests only; hetero/ never imports torch outside the peer
backend): the float64 PyTorch result of a case from its inputs in the case layout."""

import numpy as np


def expected(torch, case, inputs) -> np.ndarray:
    F, p = torch.nn.functional, case.p
    t = {k: torch.from_numpy(v).double() for k, v in inputs.items() if isinstance(v, np.ndarray)}
    if case.workload == "matmul":
        return torch.matmul(t["a"], t["b"]).numpy()
    if case.workload == "attention":
        gqa = t["key"].shape[1] != t["query"].shape[1]
        return F.scaled_dot_product_attention(
            t["query"],
            t["key"],
            t["value"],
            attn_mask=t.get("attn_mask"),
            is_causal=bool(p["causal"]),
            scale=inputs.get("scale"),
            enable_gqa=gqa,
        ).numpy()
    pair = {
        k: (p[k], p[k] if p.get(k + "_w", -1) == -1 else p[k + "_w"])
        for k in ("stride", "padding", "dilation", "output_padding")
        if k in p
    }
    if case.workload == "conv2d":
        return F.conv2d(
            t["input"], t["weight"], t.get("bias"), pair["stride"], pair["padding"], pair["dilation"], p["groups"]
        ).numpy()
    return F.conv_transpose2d(
        t["input"],
        t["weight"],
        t.get("bias"),
        pair["stride"],
        pair["padding"],
        pair["output_padding"],
        p["groups"],
        pair["dilation"],
    ).numpy()
