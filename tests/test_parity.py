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
    workload = draw(st.sampled_from(sorted(WORKLOADS)))
    w = get(workload)
    if workload == "matmul":
        return w.case(dict(M=draw(dims), N=draw(dims), K=draw(dims)))
    if workload == "attention":
        return w.case(dict(B=draw(st.integers(1, 2)), H=draw(st.integers(1, 3)), S=draw(st.integers(1, 150)),
                           D=draw(st.integers(1, 72)), causal=draw(st.integers(0, 1))))
    r, s = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    stride, dilation = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    params = dict(N=draw(st.integers(1, 3)), C=draw(st.integers(1, 8)), K=draw(st.integers(1, 8)), R=r, S=s,
                  H=draw(st.integers(1, 20)) + dilation * (r - 1), W=draw(st.integers(1, 20)) + dilation * (s - 1),
                  stride=stride, padding=draw(st.integers(0, 2)), dilation=dilation)
    if workload == "conv_transpose2d":
        params["output_padding"] = draw(st.integers(0, max(stride, dilation) - 1))
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
