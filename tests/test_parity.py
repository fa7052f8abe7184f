"""Every workload on every available backend against the float64 reference: presets that are not multiples of
any tile, and hypothesis-generated shapes."""
import pytest
from hypothesis import HealthCheck, given, reject, settings
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
        return w.case(dict(B=draw(st.integers(1, 2)), H=hkv * draw(st.integers(1, 3)), S=draw(st.integers(1, 150)),
                           D=draw(st.integers(1, 72)), causal=causal, Hkv=hkv,
                           L=draw(st.sampled_from([0, 0, 1, 7, 33])), Dv=draw(st.sampled_from([0, 0, 5, 40])),
                           mask=0 if causal else draw(st.sampled_from([0, 1, 2]))))
    g = draw(st.sampled_from([1, 1, 2, 3]))
    r, s = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw, dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    params = dict(N=draw(st.integers(1, 3)), C=g * draw(st.integers(1, 4)), K=g * draw(st.integers(1, 4)), R=r,
                  S=s, H=draw(st.integers(1, 20)) + dh * (r - 1), W=draw(st.integers(1, 20)) + dw * (s - 1),
                  stride=sh, padding=draw(st.integers(0, 2)), dilation=dh, groups=g, stride_w=sw,
                  padding_w=draw(st.integers(-1, 2)), dilation_w=dw)
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
