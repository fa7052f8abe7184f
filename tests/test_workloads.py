"""Workload definitions need no backend: presets, shape parsing, FLOP/byte formulas, references vs PyTorch."""

import numpy as np
import pytest

from hetero.errors import HeteroError
from hetero.workloads import WORKLOADS, check, get
from hetero.workloads.base import round_to_dtype


@pytest.mark.parametrize("name", WORKLOADS)
def test_every_preset_is_a_valid_case_with_positive_counts(name):
    w = get(name)
    cases = w.preset_cases("all")
    assert len(cases) == len(w.presets) and w.preset_cases("quick") and w.preset_cases("default")
    for c in cases:
        assert w.flops(c.p) > 0 and w.bytes_moved(c.p, 4) > 0 and all(n > 0 for n in w.out_shape(c.p))


def test_flop_formulas():
    assert get("matmul").flops(dict(M=2, N=3, K=4)) == 2 * 2 * 3 * 4
    full = dict(B=1, H=2, S=8, D=4, causal=0)
    assert get("attention").flops(full) == 4 * 2 * 64 * 4
    assert get("attention").flops({**full, "causal": 1}) == 2 * 2 * 64 * 4
    conv = get("conv2d").case(dict(N=1, C=2, H=5, W=5, K=3, R=3, S=3)).p  # P = Q = 3
    assert get("conv2d").flops(conv) == 2 * 1 * 3 * 2 * 9 * 9
    tconv = get("conv_transpose2d").case(dict(N=1, C=2, H=4, W=4, K=3, R=3, S=3, stride=2)).p
    assert get("conv_transpose2d").out_shape(tconv) == (1, 3, 9, 9)
    assert get("conv_transpose2d").flops(tconv) == 2 * 2 * 3 * 9 * 16


@pytest.mark.parametrize(
    "text,expected",
    [
        ("4x12x512x64", dict(B=4, H=12, S=512, D=64)),
        ("4x12x512x64,causal=1", dict(B=4, H=12, S=512, D=64, causal=1)),
        ("1x2x3x4,causal", dict(B=1, H=2, S=3, D=4, causal=1)),
    ],
)
def test_parse_shape(text, expected):
    assert get("attention").parse_shape(text) == expected


@pytest.mark.parametrize("text", ["4x12x512", "4x12x512x64x1", "axbxcxd", "4x12x512x64,causal=yes", "4,,x"])
def test_malformed_shape_names_the_shape_and_the_format(text):
    with pytest.raises(HeteroError, match="malformed --shape .*expected BxHxSxD"):
        get("attention").parse_shape(text)


@pytest.mark.parametrize(
    "name,params,match",
    [
        ("matmul", dict(M=0, N=1, K=1), "M=0 must be >= 1"),
        ("matmul", dict(M=1, N=1), "missing dimension 'K'"),
        ("matmul", dict(M=1, N=1, K=1, Z=3), "unknown parameter 'Z'"),
        ("attention", dict(B=1, H=1, S=4, D=4, causal=2), "causal=2 must be 0 or 1"),
        ("conv2d", dict(N=1, C=1, H=2, W=2, K=1, R=5, S=5), "does not fit"),
        ("conv_transpose2d", dict(N=1, C=1, H=2, W=2, K=1, R=3, S=3, stride=2, output_padding=2), "output_padding=2"),
    ],
)
def test_invalid_cases_are_refused_with_the_reason(name, params, match):
    with pytest.raises(HeteroError, match=match):
        get(name).case(params)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(HeteroError, match="unknown workload 'gemm'; valid: matmul, attention"):
        get("gemm")
    with pytest.raises(HeteroError, match="unknown matmul preset 'nope'; valid: .*square-1024"):
        get("matmul").preset_cases("nope")
    with pytest.raises(HeteroError, match="unknown dtype 'float8'"):
        get("matmul").case(dict(M=1, N=1, K=1), "float8")


def test_inputs_are_seeded_and_rounded_to_the_dtype():
    w = get("matmul")
    case = w.case(dict(M=8, N=8, K=8), "bfloat16")
    a1, a2 = w.make_inputs(case, 3)["a"], w.make_inputs(case, 3)["a"]
    assert np.array_equal(a1, a2) and not np.array_equal(a1, w.make_inputs(case, 4)["a"])
    assert np.array_equal(round_to_dtype(a1, "bfloat16"), a1)  # already representable
    assert (a1.view(np.uint32) & 0xFFFF).max() == 0


def test_check_flags_wrong_nan_and_misshapen_outputs():
    ref = np.ones((4, 4))
    assert check(ref.astype(np.float32), ref, "float32")[0]
    assert not check(ref * 1.01, ref, "float32")[0]
    bad = ref.copy()
    bad[0, 0] = np.nan
    assert not check(bad, ref, "float32")[0]
    assert not check(np.ones((4, 5)), ref, "float32")[0]


@pytest.mark.parametrize("name", WORKLOADS)
def test_reference_matches_pytorch(name):
    torch = pytest.importorskip("torch")
    from torch_oracle import expected

    w = get(name)
    for case in w.preset_cases("quick"):
        inputs = w.make_inputs(case)
        np.testing.assert_allclose(w.reference(case, inputs), expected(torch, case, inputs), rtol=1e-10, atol=1e-10)
