"""numba's grouped conv2d kernels against the float64 reference, on the geometry their paths split on: a strided
3x3 (phase-split planes, _pad_phases and _plane3x3_phased; rows long enough for the eight-pair deinterleave and
short rows, odd and even widths, padding 0-2, dilation 1-2, strides 2 and 3 along either axis) next to the other
direct paths (stride-1 3x3, other kernel sizes), with bias; grouped, and ungrouped with few channels (the
direct kernel takes stride-1 3x3 ones: takes_dense)."""

import numpy as np
import pytest

from hetero.kernels.conv2d import numba_grouped
from hetero.workloads import get
from hetero.workloads.base import Case

GEOMETRY = [
    dict(stride=2, padding=1, dilation=1),
    dict(stride=2, padding=0, dilation=1),
    dict(stride=2, padding=2, dilation=2),
    dict(stride=2, stride_w=1, padding=1, dilation=1),
    dict(stride=1, stride_w=2, padding=1, padding_w=0, dilation=1),
    dict(stride=3, stride_w=2, padding=1, dilation=1, dilation_w=2),
    dict(stride=1, padding=1, dilation=1),
]
SIZES = [(37, 41), (9, 8)]  # rows of 20 pairs (eight-pair steps, a remainder, edges) and rows shorter than 8


@pytest.mark.parametrize("groups", [4, 1], ids=["grouped", "ungrouped"])
@pytest.mark.parametrize("cg", [1, 3], ids=["depthwise", "cg3"])
@pytest.mark.parametrize("hw", SIZES, ids=["wide", "narrow"])
@pytest.mark.parametrize("geo", GEOMETRY, ids=range(len(GEOMETRY)))
@pytest.mark.parametrize("rs", [(3, 3), (5, 3)], ids=["3x3", "5x3"])
def test_grouped_conv2d_matches_reference(geo, hw, cg, rs, groups):
    p = dict(N=2, C=cg * groups, H=hw[0], W=hw[1], K=2 * groups, R=rs[0], S=rs[1], groups=groups) | geo
    wl = get("conv2d")
    case = Case("conv2d", tuple(p.items()))
    inputs = wl.make_inputs(case, seed=3)
    inputs["bias"] = np.linspace(-1, 1, p["K"]).astype(np.float32)
    P, Q = wl.out_hw(case.p)
    out = np.full((p["N"], p["K"], P, Q), np.nan, np.float32)
    sh, sw = p["stride"], p.get("stride_w", p["stride"])
    ph, pw = p["padding"], p.get("padding_w", p["padding"])
    dh, dw = p["dilation"], p.get("dilation_w", p["dilation"])
    numba_grouped.conv2d(inputs["input"], inputs["weight"], inputs["bias"], (sh, sw), (ph, pw), (dh, dw), groups, out)
    ref = wl.reference(case, inputs)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
