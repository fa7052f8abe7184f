"""The cupy backend's array-module paths (kernels/attention/xp_attention.py) run with NumPy as the array module:
every SDPA argument its fused kernel does not take, NaN and inf included, against the float64 reference. The GPU
tests (tests/gpu) run the same code with CuPy."""

import numpy as np
import pytest

from hetero.kernels.attention import xp_attention
from hetero.workloads import check, get
from hetero.workloads.attention import scale_of

CASES = {
    "cross": dict(B=2, H=3, S=37, D=8, L=5),
    "cross-causal-longer-query": dict(B=1, H=2, S=6, D=8, L=11, causal=1),
    "cross-causal-shorter-query": dict(B=1, H=2, S=19, D=8, L=4, causal=1),
    "decode-gqa": dict(B=2, H=8, Hkv=2, S=33, D=16, L=1),
    "mqa-value-dim": dict(B=1, H=4, Hkv=1, S=21, D=8, Dv=12, L=3),
    "bool-mask": dict(B=3, H=2, S=17, D=8, L=4, mask=1),
    "float-mask-gqa": dict(B=2, H=6, Hkv=3, S=13, D=8, L=5, mask=2),
    "causal-self": dict(B=1, H=2, S=23, D=16, causal=1),
}
# (input, flat index, value) written into the seeded inputs: a NaN query row, an inf key, a NaN value column
SPOTS = [[], [("query", 3, np.nan)], [("key", 9, np.inf)], [("value", 5, np.nan)], [("key", 0, -np.inf)]]


def _run(params, spots, seed=0):
    case = get("attention").case(params)
    inputs = get("attention").make_inputs(case, seed)
    for name, index, value in spots:
        inputs[name] = inputs[name].copy()
        inputs[name].reshape(-1)[index % inputs[name].size] = value
    with np.errstate(invalid="ignore", over="ignore"):
        ref = get("attention").reference(case, inputs)
        out = np.empty(ref.shape, np.float32)
        xp_attention.attention(
            np,
            inputs["query"],
            inputs["key"],
            inputs["value"],
            inputs["attn_mask"],
            bool(case.p["causal"]),
            scale_of(case, None),
            out,
        )
    return check(out, ref, case.dtype)


@pytest.mark.parametrize("spots", SPOTS, ids=lambda s: s[0][0] + "-" + str(s[0][2]) if s else "finite")
@pytest.mark.parametrize("name", sorted(CASES))
def test_xp_attention_matches_reference(name, spots):
    ok, abs_err, rel_err = _run(CASES[name], spots)
    assert ok, f"{name} {spots}: abs {abs_err:.3g}, rel {rel_err:.3g}"


def test_xp_attention_steps_over_heads_within_its_score_budget(monkeypatch):
    """A score buffer too small for every head at once: a key/value head a step, the same result."""
    monkeypatch.setattr(xp_attention, "SCORE_BYTES", 1)
    assert _run(CASES["float-mask-gqa"], [("value", 5, np.nan)])[0]
    assert _run(CASES["bool-mask"], [])[0]


def test_xp_attention_row_that_sees_no_key_is_zero():
    """PyTorch's safe softmax: a query row whose every key is masked out gives 0, not NaN."""
    case = get("attention").case(dict(B=1, H=2, S=9, D=8, L=3, mask=2))
    inputs = get("attention").make_inputs(case)
    inputs["attn_mask"] = inputs["attn_mask"].copy()
    inputs["attn_mask"][0, 1, 2, :] = -np.inf
    out = np.empty((1, 2, 3, 8), np.float32)
    q, k, v, m = (inputs[n] for n in ("query", "key", "value", "attn_mask"))
    xp_attention.attention(np, q, k, v, m, False, scale_of(case, None), out)
    assert np.all(out[0, 1, 2] == 0) and np.isfinite(out).all()
    assert check(out, get("attention").reference(case, inputs), "float32")[0]
