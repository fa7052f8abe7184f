"""Every workload on every available backend against the float64 reference: presets that are not multiples of
any tile, and hypothesis-generated shapes."""

import pytest
from hypothesis import HealthCheck, event, given, reject, settings
from hypothesis import strategies as st

from conftest import backend_params
from hetero.backends import registry
from hetero.errors import HeteroError
from hetero.testing import parity
from hetero.workloads import WORKLOADS, get

# Backends that run on the host in a reasonable time for many small shapes (GPU ones live in tests/gpu).
QUICK_CASES = [(w, c) for w in WORKLOADS for c in get(w).preset_cases("quick")]


@pytest.mark.parametrize("backend", backend_params(exclude=("cupy", "torch-cuda")))
@pytest.mark.parametrize("workload,case", QUICK_CASES, ids=[f"{w}-{c.preset}" for w, c in QUICK_CASES])
def test_quick_presets_match_reference(backend, workload, case):
    if registry.get(backend).unsupported(case):
        pytest.skip(registry.get(backend).unsupported(case))
    ok, abs_err, rel_err = parity(backend, case)
    assert ok, f"{backend} {workload} {case.shape}: max abs err {abs_err:.3g}, rel {rel_err:.3g}"


dims = st.integers(1, 40)


@st.composite
def cases(draw):
    """Any case the workloads define: decode/cross lengths, GQA, masks, value head sizes; conv groups and
    different H/W strides, paddings, dilations; batched matmul. Backends skip (with a reason) what they refuse."""
    workload = draw(st.sampled_from(sorted(WORKLOADS)))
    w = get(workload)
    if workload == "matmul":
        return w.case(dict(M=draw(dims), N=draw(dims), K=draw(dims), batch=draw(st.sampled_from([1, 1, 3]))))
    if workload == "attention":
        hkv = draw(st.integers(1, 2))
        causal = draw(st.integers(0, 1))
        return w.case(
            dict(
                B=draw(st.integers(1, 2)),
                H=hkv * draw(st.integers(1, 3)),
                S=draw(st.integers(1, 150)),
                D=draw(st.integers(1, 72)),
                causal=causal,
                Hkv=hkv,
                L=draw(st.sampled_from([0, 0, 1, 7, 33])),
                Dv=draw(st.sampled_from([0, 0, 5, 40])),
                mask=0 if causal else draw(st.sampled_from([0, 1, 2])),
            )
        )
    g = draw(st.sampled_from([1, 1, 2, 3]))
    r, s = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw, dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    params = dict(
        N=draw(st.integers(1, 3)),
        C=g * draw(st.integers(1, 4)),
        K=g * draw(st.integers(1, 4)),
        R=r,
        S=s,
        H=draw(st.integers(1, 20)) + dh * (r - 1),
        W=draw(st.integers(1, 20)) + dw * (s - 1),
        stride=sh,
        padding=draw(st.integers(0, 2)),
        dilation=dh,
        groups=g,
        stride_w=sw,
        padding_w=draw(st.integers(-1, 2)),
        dilation_w=dw,
    )
    if workload == "conv_transpose2d":
        params["output_padding"] = draw(st.integers(0, max(sh, dh) - 1))
        params["output_padding_w"] = draw(st.integers(0, max(sw, dw) - 1))
    try:
        return w.case(params)
    except HeteroError:  # e.g. padding that leaves no output: not a shape to test parity on
        reject()


@pytest.mark.parametrize("backend", backend_params(exclude=("numpy", "cupy", "torch-cuda", "null")))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=cases())
def test_random_shapes_match_reference(backend, case):
    reason = registry.get(backend).unsupported(case)
    if reason:
        return
    ok, abs_err, rel_err = parity(backend, case)
    assert ok, f"{backend} {case.workload} {case.shape}: max abs err {abs_err:.3g}, rel {rel_err:.3g}"


@pytest.mark.parametrize("backend", backend_params(exclude=("cupy", "torch-cuda", "null")))
def test_rows_that_see_no_key_are_zero(backend):
    """A boolean attn_mask row of all False gives 0 (PyTorch's answer) on every backend that takes masks."""
    import numpy as np

    import hetero

    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal(s).astype(np.float32) for s in ((2, 4, 3, 8), (2, 2, 5, 8), (2, 2, 5, 6)))
    mask = rng.random((2, 1, 3, 5)) > 0.4
    mask[:, :, 0] = True
    mask[1, 0, 2] = False
    args = dict(query=q, key=k, value=v, attn_mask=mask, enable_gqa=True)
    try:
        got = hetero.run("attention", backend=backend, **args)
    except HeteroError as exc:  # a backend without masks refuses, with its reason
        assert "not implemented by" in str(exc)
        return
    want = hetero.run("attention", backend="numpy", **args)
    assert not got[1, :, 2].any()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("backend", backend_params(exclude=("cupy", "torch-cuda", "null")))
@pytest.mark.parametrize("bad", [None, ("key", float("nan")), ("key", float("inf")), ("query", float("nan"))])
def test_key_blocks_masked_from_every_row(backend, bad):
    """Keys past 300 of 700 hidden from every query (boolean key padding), so a key block of numba's (256 keys)
    sees no visible score: the same answer as the reference. A NaN or inf key there still makes rows NaN, and so
    does a NaN query in a row that sees no key at all (a NaN or +inf score plus a masked -inf is NaN in the
    reference, as in PyTorch's math attention)."""
    import numpy as np

    import hetero

    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal(s).astype(np.float32) for s in ((2, 2, 16, 8), (2, 2, 700, 8), (2, 2, 700, 8)))
    mask = np.broadcast_to(np.arange(700) < 300, (2, 1, 16, 700)).copy()
    if bad and bad[0] == "key":
        k[1, 0, 600, 3] = bad[1]
    elif bad:  # batch 1 sees no key at all, and its query row 3 holds a NaN
        mask[1] = False
        q[1, 0, 3, 2] = bad[1]
    args = dict(query=q, key=k, value=v, attn_mask=mask)
    try:
        got = hetero.run("attention", backend=backend, **args)
    except HeteroError as exc:
        assert "not implemented by" in str(exc)
        return
    with np.errstate(invalid="ignore"):
        want = hetero.run("attention", backend="numpy", **args)
    assert np.isnan(want[1, 0]).any() == (bad is not None)  # inf: the rows whose q[:, 3] > 0 (inf - inf)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


# Non-finite inputs: small shapes from few kernel geometries (each OpenCL build is per geometry), and up to three
# NaN/inf values written into the inputs. Every backend must give non-finite outputs exactly where the
# reference does and match it elsewhere (hetero.workloads.check). Cases total 200 a backend.
NONFINITE = (float("nan"), float("inf"), float("-inf"))


@st.composite
def small_cases(draw):
    workload = draw(st.sampled_from(sorted(WORKLOADS)))
    w = get(workload)
    small = st.integers(1, 12)
    if workload == "matmul":
        return w.case(dict(M=draw(small), N=draw(small), K=draw(small)))
    if workload == "attention":  # with decode/cross lengths, GQA, a value head size and masks (NaN/inf go there too)
        causal, hkv = draw(st.integers(0, 1)), draw(st.integers(1, 2))
        return w.case(
            dict(
                B=draw(st.integers(1, 2)),
                H=hkv * draw(st.integers(1, 2)),
                S=draw(st.integers(1, 40)),
                D=draw(st.sampled_from([3, 8, 24])),
                causal=causal,
                Hkv=hkv,
                L=draw(st.sampled_from([0, 0, 1, 5])),
                Dv=draw(st.sampled_from([0, 0, 8])),
                mask=0 if causal else draw(st.integers(0, 2)),
            )
        )
    r = draw(st.sampled_from([1, 3]))
    stride = draw(st.integers(1, 2))
    params = dict(
        N=draw(st.integers(1, 2)),
        C=draw(st.integers(1, 4)),
        K=draw(st.integers(1, 4)),
        R=r,
        S=r,
        H=draw(st.integers(1, 8)) + r - 1,
        W=draw(st.integers(1, 8)) + r - 1,
        stride=stride,
        padding=draw(st.integers(0, 1)),
        dilation=1,
    )
    if workload == "conv_transpose2d":
        params["output_padding"] = draw(st.integers(0, stride - 1))
    try:
        return w.case(params)
    except HeteroError:
        reject()


@st.composite
def with_nonfinite(draw):
    case = draw(small_cases())
    names = [n for n, x in get(case.workload).make_inputs(case).items() if x is not None]
    # 0 to 3 values: the first example of every run (hypothesis' simplest) is all finite, most are not.
    spots = draw(
        st.lists(st.tuples(st.sampled_from(names), st.integers(0, 10**6), st.sampled_from(NONFINITE)), max_size=3)
    )
    return case, spots


def _ours(backends):
    """hetero's own backends; a peer library is skipped, saying why."""
    return [
        pytest.param(
            b.values[0],
            marks=pytest.mark.skip(
                reason=f"{b.values[0]} is a peer: how it treats NaN and inf is its library's choice, not ours"
            ),
        )
        if registry.backend_class(b.values[0]).peer
        else b
        for b in backends
    ]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy meeting NaN and inf, as intended here
@pytest.mark.parametrize("backend", _ours(backend_params(exclude=("cupy", "torch-cuda", "null"))))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=with_nonfinite())
def test_nonfinite_inputs_propagate_as_in_the_reference(backend, drawn):
    case, spots = drawn
    event("non-finite inputs" if spots else "finite inputs")
    if registry.get(backend).unsupported(case):
        return
    ok, abs_err, rel_err = parity(backend, case, nonfinite=spots)
    assert ok, (
        f"{backend} {case.workload} {case.shape} with {spots}: non-finite outputs differ from the "
        f"reference's, or finite ones by abs {abs_err:.3g}, rel {rel_err:.3g}"
    )


# Cases that once went wrong: numba's fastmath attention dropped every NaN and inf of the query and key; fpga-emu's
# softmax made a row NaN whose first score was -inf; numba and opencl skip masked keys, so a NaN value there
# left finite outputs where the reference's (0 * NaN) are NaN.
KNOWN = [
    ("attention", dict(B=1, H=1, S=5, D=8), [("query", 3, float("nan"))]),
    ("attention", dict(B=1, H=2, S=9, D=8), [("key", 2, float("inf"))]),
    ("attention", dict(B=1, H=1, S=9, D=8), [("key", 0, float("-inf"))]),
    ("attention", dict(B=1, H=1, S=33, D=8, causal=1), [("value", 32 * 8 + 5, float("nan"))]),
    ("attention", dict(B=1, H=1, S=6, D=3, causal=1), [("key", 0, float("-inf")), ("key", 1, float("-inf"))]),
    # decoding (numba_decode): five query rows on one key/value head (four at a time, then one, value rows four a
    # pass), a key count that is not a multiple of four; three query rows (value rows two a pass) with an inf
    # value inside a pair; a NaN value in a key padded away by the boolean mask
    ("attention", dict(B=1, H=5, S=10, D=8, L=1, Hkv=1), [("value", 9 * 8 + 2, float("inf"))]),
    ("attention", dict(B=1, H=3, S=9, D=8, L=1, Hkv=1), [("value", 5 * 8 + 3, float("inf"))]),
    ("attention", dict(B=2, H=2, S=7, D=8, L=1, mask=1), [("value", 6 * 8 + 1, float("nan"))]),
    ("matmul", dict(M=5, N=7, K=9), [("a", 4, float("inf")), ("b", 20, float("-inf"))]),
    ("conv2d", dict(N=1, C=2, H=6, W=6, K=3, R=3, S=3, padding=1), [("input", 10, float("nan"))]),
    ("conv_transpose2d", dict(N=1, C=2, H=4, W=4, K=3, R=3, S=3, stride=2), [("weight", 5, float("inf"))]),
]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("backend", _ours(backend_params(exclude=("cupy", "torch-cuda", "null"))))
@pytest.mark.parametrize("workload,params,spots", KNOWN, ids=[f"{w}-{s[0][0]}-{s[0][2]}" for w, _, s in KNOWN])
def test_known_nonfinite_cases(backend, workload, params, spots):
    case = get(workload).case(params)
    ok, abs_err, rel_err = parity(backend, case, nonfinite=spots)
    assert ok, f"{backend} {case.workload} {case.shape} with {spots}: abs {abs_err:.3g}, rel {rel_err:.3g}"


# The grouped direct kernel's paths (kernels/conv2d/numba_grouped.py): 3x3 at stride 1 over flattened planes (with
# dilation along either axis, and several input channels a group), any other kernel or stride a row at a time
# (a W stride above 1 from column-phase-split rows).
GROUPED = {
    "dw3x3": dict(N=2, C=6, H=9, W=13, K=6, R=3, S=3, padding=1, groups=6),
    "dw3x3-dilated": dict(N=1, C=3, H=11, W=10, K=6, R=3, S=3, padding=2, dilation=2, dilation_w=1, groups=3),
    "grouped3x3": dict(N=2, C=8, H=7, W=19, K=12, R=3, S=3, padding=1, padding_w=0, groups=2),
    "dw5x5": dict(N=1, C=4, H=12, W=9, K=4, R=5, S=5, padding=2, groups=4),
    "dw3x3-s2": dict(N=2, C=5, H=15, W=17, K=5, R=3, S=3, stride=2, padding=1, stride_w=1, groups=5),
    "dw3x3-s2w": dict(N=2, C=5, H=15, W=17, K=5, R=3, S=3, stride=2, padding=1, groups=5),
    "dw5x3-s3-dilated": dict(N=1, C=4, H=13, W=23, K=8, R=5, S=3, stride=3, padding=2, dilation_w=2, groups=4),
}


@pytest.mark.parametrize("backend", backend_params(exclude=("cupy", "torch-cuda")))
@pytest.mark.parametrize("name", sorted(GROUPED))
def test_grouped_conv_paths_match_reference(backend, name):
    case = get("conv2d").case(GROUPED[name])
    if registry.get(backend).unsupported(case):
        pytest.skip(registry.get(backend).unsupported(case))
    ok, abs_err, rel_err = parity(backend, case)
    assert ok, f"{backend} {case.shape}: max abs err {abs_err:.3g}, rel {rel_err:.3g}"
