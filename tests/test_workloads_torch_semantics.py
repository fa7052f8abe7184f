"""hetero.run's arguments mean what PyTorch's do: scaled_dot_product_attention, conv2d, conv_transpose2d and
torch.matmul, compared with the installed torch on small shapes (hypothesis draws shapes and arguments, valid
and not): same result where torch returns one, a one-line HeteroError exactly where torch raises."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hetero
from hetero.errors import HeteroError
from hetero.workloads import get

torch = pytest.importorskip("torch", reason="torch (the oracle) is not installed")
F = torch.nn.functional
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
small = st.integers(1, 4)


def same_as_torch(torch_fn, workload, backend="numpy", **kwargs):
    """hetero.run and torch_fn agree: both raise, or both return the same array."""
    t = {k: torch.from_numpy(np.array(v, copy=True)) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    try:
        with warnings.catch_warnings():  # torch's notes on its own performance (padding="same" copies)
            warnings.simplefilter("ignore", UserWarning)
            want = torch_fn(**t).numpy()
    except (RuntimeError, ValueError, IndexError, TypeError) as exc:
        with pytest.raises(HeteroError) as info:
            hetero.run(workload, backend=backend, **kwargs)
        assert "\n" not in str(info.value), str(info.value)
        return f"refused: {exc}"
    try:
        got = hetero.run(workload, backend=backend, **kwargs)
    except HeteroError as exc:  # an empty transposed-conv output that torch hands to oneDNN only because it runs
        # on several threads (1x1 kernel, stride 1, batch 2-15): hetero refuses it, as torch does on one thread
        assert want.size == 0 and "leaves no output" in str(exc), str(exc)
        return "refused where torch returned an empty output"
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)
    return "ran"


def rand(rng, shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


# -- attention ------------------------------------------------------------------------------------------------
@st.composite
def attention_args(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    nd = draw(st.integers(2, 5))
    hq = draw(st.sampled_from([1, 2, 4, 6]))
    batch = [draw(small) for _ in range(nd - 3)] + ([hq] if nd >= 3 else [])
    L, S, E, Ev = draw(small), draw(st.integers(1, 9)), draw(small), draw(small)

    def kv_batch():  # key/value batch dims: the query's, a broadcast 1, a divisor of H (GQA) or a mismatch
        out = [draw(st.sampled_from([d, 1, d + 1])) for d in batch[:-1]]
        return out + ([draw(st.sampled_from([hq, 1, 2, 3]))] if batch else [])

    kb, vb = kv_batch(), draw(st.sampled_from(["same", "other"]))
    vb = kb if vb == "same" else kv_batch()
    kw = dict(
        query=rand(rng, batch + [L, E]),
        key=rand(rng, kb + [S, E]),
        value=rand(rng, vb + [S, Ev]),
        enable_gqa=draw(st.booleans()),
    )
    mask = draw(st.sampled_from(["none", "none", "bool", "float", "causal"]))
    if mask == "causal":
        kw["is_causal"] = True
    elif mask != "none":
        mshape = [draw(st.sampled_from([d, 1])) for d in batch][draw(st.integers(0, len(batch))) :]
        mshape += [draw(st.sampled_from([L, 1])), draw(st.sampled_from([S, 1, S + 1]))]
        kw["attn_mask"] = rng.random(mshape) > 0.3 if mask == "bool" else rand(rng, mshape)
    if draw(st.booleans()):
        # with is_causal, a scale that is not positive in float32: PyTorch's fused CPU kernel scales its -inf
        # causal fill too (-inf * 0 = NaN, -inf * -1 = +inf: NaN rows), unlike the formula its documentation gives
        # (scores * scale, then the mask added), which hetero follows; such scales are not drawn against it
        scales = st.floats(-2, 2)
        kw["scale"] = draw(scales.filter(lambda x: np.float32(x) > 0) if kw.get("is_causal") else scales)
    return kw


@SETTINGS
@given(kw=attention_args())
def test_attention_matches_torch_or_both_refuse(kw):
    same_as_torch(F.scaled_dot_product_attention, "attention", **kw)


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(dropout_p=0.1), "dropout_p=0.1 is refused"),
        (dict(is_causal=True, attn_mask=np.ones((3, 5), bool)), "attn_mask must not be set when is_causal"),
        (dict(attn_mask=np.ones((3, 5), np.int32)), "attn_mask dtype int32"),
        (dict(attn_mask=np.ones(5, bool)), "attn_mask must have at least 2 dimensions"),
        (dict(attn_mask=np.ones((3, 3), bool)), r"does not broadcast to \(\.\.\., L, S\)"),
        (
            dict(key=np.ones((2, 3, 5, 8), np.float32), value=np.ones((2, 3, 5, 6), np.float32), enable_gqa=True),
            "to divide query heads",
        ),
        (dict(key=np.ones((2, 2, 5, 8), np.float32), value=np.ones((2, 2, 5, 6), np.float32)), "pass enable_gqa"),
        (dict(key=np.ones((2, 4, 5, 7), np.float32)), "key head size 7"),
        (dict(query=np.ones((2, 4, 3, 8))), "operands must share one dtype"),
        (dict(scale=float("nan")), "must be a finite number"),
        (dict(scale=float("-inf")), "must be a finite number"),
    ],
)
def test_attention_refusals_name_the_argument(kw, match):
    rng = np.random.default_rng(0)
    args = dict(query=rand(rng, (2, 4, 3, 8)), key=rand(rng, (2, 4, 5, 8)), value=rand(rng, (2, 4, 5, 6))) | kw
    with pytest.raises(HeteroError, match=match) as info:
        hetero.run("attention", **args)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize(
    "kw",
    [dict(), dict(is_causal=True), dict(scale=3.0), dict(attn_mask="float")],
    ids=["plain", "causal", "scale", "mask"],
)
def test_attention_head_size_zero_runs_as_in_torch(backend, kw):
    """E=0: PyTorch's scores are empty dot products, 0 whatever the scale; the output averages the values."""
    rng = np.random.default_rng(2)
    if kw.get("attn_mask") == "float":
        kw = dict(attn_mask=rand(rng, (3, 5)))
    args = dict(query=rand(rng, (2, 4, 3, 0)), key=rand(rng, (2, 4, 5, 0)), value=rand(rng, (2, 4, 5, 6))) | kw
    assert same_as_torch(F.scaled_dot_product_attention, "attention", backend=backend, **args) == "ran"


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("L", [3, 1], ids=["flash", "decode"])
def test_attention_very_negative_additive_mask_as_in_torch(backend, L):
    """Finite mask values far below -1e29 weigh as PyTorch weighs them (only -inf is a False of a boolean mask):
    rows whose every finite value lies out there, -inf and the float32 minimum beside them."""
    rng = np.random.default_rng(4)
    mask = rand(rng, (L, 5)) * np.float32(1e36) - np.float32(1e35)
    mask[0, 1] = -np.inf
    mask[-1] = [-1e35, -1e35, -np.inf, -3e38, -2e35]
    args = dict(query=rand(rng, (2, 4, L, 8)), key=rand(rng, (2, 4, 5, 8)), value=rand(rng, (2, 4, 5, 6)))
    assert same_as_torch(F.scaled_dot_product_attention, "attention", backend=backend, attn_mask=mask, **args) == "ran"


def test_attention_fully_masked_rows_give_zero_as_in_torch():
    rng = np.random.default_rng(1)
    mask = rng.random((2, 1, 3, 5)) > 0.5
    mask[0, 0, 1] = False
    assert (
        same_as_torch(
            F.scaled_dot_product_attention,
            "attention",
            query=rand(rng, (2, 4, 3, 8)),
            key=rand(rng, (2, 4, 5, 8)),
            value=rand(rng, (2, 4, 5, 6)),
            attn_mask=mask,
        )
        == "ran"
    )


def test_attention_counts_follow_the_arguments():
    w = get("attention")
    mha, gqa = w.case(dict(B=1, H=32, S=4096, D=128, L=1)), w.case(dict(B=1, H=32, S=4096, D=128, L=1, Hkv=8))
    assert w.flops(gqa.p) == w.flops(mha.p) == 2 * 32 * 4096 * 256
    kv = 2 * 32 * 4096 * 128 * 2  # K and V of every head, fp16
    assert w.bytes_moved(mha.p, 2) - w.bytes_moved(gqa.p, 2) == pytest.approx(kv * 3 / 4)
    causal_wide = w.case(dict(B=1, H=1, S=10, D=4, L=3, causal=1))  # rows see 1, 2, 3 keys (top-left)
    assert w.flops(causal_wide.p) == 2 * (1 + 2 + 3) * 8
    causal_tall = w.case(dict(B=1, H=1, S=2, D=4, L=4, causal=1))  # rows see 1, 2, 2, 2 keys
    assert w.flops(causal_tall.p) == 2 * 7 * 8


# -- conv2d / conv_transpose2d ---------------------------------------------------------------------------------
@st.composite
def conv_args(draw, transposed):
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    g = draw(st.sampled_from([1, 1, 2, 3]))
    C, K = g * draw(small), g * draw(small) + draw(st.sampled_from([0, 0, 0, 1]))
    R, S = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    hw = st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3)))
    kw = dict(stride=draw(hw), dilation=draw(hw), groups=g)
    wshape = (C, K // g if K % g == 0 else K, R, S) if transposed else (K, C // g, R, S)
    x = [draw(st.sampled_from([0, 1, 2]))] if draw(st.integers(0, 3)) else []  # batch 0 / 1-2 / unbatched
    kw["input"] = rand(
        rng, x + [C + draw(st.sampled_from([0, 0, 0, 1])), draw(st.integers(1, 9)), draw(st.integers(1, 9))]
    )
    kw["weight"] = rand(rng, wshape)
    pads = st.one_of(st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 2)))
    kw["padding"] = draw(pads if transposed else st.one_of(pads, st.sampled_from(["same", "valid"])))
    if transposed:
        kw["output_padding"] = draw(st.one_of(st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 2))))
    if draw(st.booleans()):
        kw["bias"] = rand(rng, (K + draw(st.sampled_from([0, 0, 1])),))
    return kw


@SETTINGS
@given(kw=conv_args(False))
def test_conv2d_matches_torch_or_both_refuse(kw):
    same_as_torch(F.conv2d, "conv2d", **kw)


@SETTINGS
@given(kw=conv_args(True))
def test_conv_transpose2d_matches_torch_or_both_refuse(kw):
    same_as_torch(F.conv_transpose2d, "conv_transpose2d", **kw)


@pytest.mark.parametrize(
    "n,weight,kw,expect",
    [
        (2, (2, 3, 2, 2), dict(padding=1), "ran"),  # batch > 1: oneDNN returns (2, 3, 0, 0)
        (3, (2, 3, 4, 4), dict(padding=(2, 0)), "ran"),  # (3, 3, 0, 4)
        (1, (2, 2, 2, 2), dict(padding=1, groups=2), "ran"),  # batch 1 with groups: oneDNN too
        (1, (2, 3, 2, 2), dict(padding=1), "refused"),  # batch 1, no groups, 2x2: PyTorch's own kernel refuses
        (2, (2, 3, 2, 2), dict(padding=2), "refused"),  # a negative size: refused at any batch
    ],
)
def test_conv_transpose2d_empty_output_as_in_torch(n, weight, kw, expect):
    rng = np.random.default_rng(5)
    args = dict(input=rand(rng, (n, 2, 1, 1)), weight=rand(rng, weight), stride=1, **kw)
    assert same_as_torch(F.conv_transpose2d, "conv_transpose2d", **args).split(":")[0] == expect


def test_conv_counts_divide_by_groups():
    w = get("conv2d")
    dense = dict(N=1, C=32, H=8, W=8, K=32, R=3, S=3, padding=1)
    assert w.flops(w.case(dense | {"groups": 32}).p) * 32 == w.flops(w.case(dense).p)
    t = get("conv_transpose2d")
    assert t.flops(t.case(dense | {"groups": 4}).p) * 4 == t.flops(t.case(dense).p)
    rect = w.case(dict(N=1, C=3, H=64, W=256, K=8, R=4, S=4, stride=2, padding=1, stride_w=4, padding_w=0))
    assert (
        w.out_shape(rect.p) == (1, 8, 32, 64)
        and rect.shape == "1x3x64x256x8x4x4 stride=2 padding=1 stride_w=4 padding_w=0"
    )


# -- matmul ---------------------------------------------------------------------------------------------------
@st.composite
def matmul_args(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    dim = st.integers(0, 3)
    a = draw(st.lists(dim, min_size=draw(st.sampled_from([1, 1, 1, 0])), max_size=4))
    b = draw(st.lists(dim, min_size=draw(st.sampled_from([1, 1, 1, 0])), max_size=4))
    if a and len(b) >= 2 and draw(st.booleans()):
        b[-2] = a[-1]  # mostly multipliable
    if a and len(b) == 1 and draw(st.booleans()):
        b[0] = a[-1]
    return dict(input=rand(rng, a), other=rand(rng, b))


@SETTINGS
@given(kw=matmul_args())
def test_matmul_matches_torch_or_both_refuse(kw):
    same_as_torch(torch.matmul, "matmul", **kw)


def test_matmul_counts_follow_the_batch():
    w = get("matmul")
    assert w.flops(w.case(dict(M=2, N=3, K=4, batch=5)).p) == 5 * 2 * 2 * 3 * 4
    params, _, shape = w.call(input=np.ones((5, 2, 4)), other=np.ones((4, 3)))  # shared `other`: one tall GEMM
    assert params == dict(M=10, N=3, K=4) and shape == (5, 2, 3)


def test_scheduler_task_sets_carry_the_new_cases_with_their_counts():
    from hetero.scheduler import tasks

    ts = tasks.models(400, inputs=False)  # shapes only: drawn from every default preset and their halves
    used = set().union(*(get(t.case.workload).features(t.case.p) for t in ts.tasks))
    assert {"cross", "gqa", "mask", "groups", "rect", "batch"} <= used
    for t in ts.tasks:
        w = get(t.case.workload)
        assert t.flops == w.flops(t.case.p)
        assert t.nbytes == w.bytes_moved(t.case.p, 4) - 4.0 * np.prod(w.out_shape(t.case.p))


@pytest.mark.parametrize("name", ["attention", "conv2d", "conv_transpose2d", "matmul"])
def test_every_preset_is_expressible_with_shape(name):
    """bench.run --shape 'dims,opt=value,...' gives every preset's case (decode, GQA, masks, groups, H/W pairs)."""
    w = get(name)
    for case in w.preset_cases("all"):
        p = case.p
        text = "x".join(str(p[d]) for d in w.dims) + "".join(f",{k}={p[k]}" for k in w.options)
        assert w.case(w.parse_shape(text)).params == case.params, text
    if name == "attention":
        assert w.case(w.parse_shape("1x32x8192x128,L=1,Hkv=8")).shape == "1x32x8192x128 L=1 Hkv=8"
