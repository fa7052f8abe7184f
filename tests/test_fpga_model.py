"""fpga_model: each preset reproduces its design's published figure within 10%; the model is monotonic."""

import dataclasses

import pytest

from hetero import fpga_model as fm
from hetero.errors import HeteroError


@pytest.mark.parametrize("name", fm.PRESETS)
def test_published_figure_within_10_percent(name):
    pr = fm.PRESETS[name]
    M, N, K = pr.published_shape
    est = fm.gemm(pr, M, N, K)
    gflops = 2 * M * N * K / est.kernel_s / 1e9
    assert abs(gflops / pr.published_gflops - 1) < 0.10
    if pr.published_s:
        assert abs(est.kernel_s / pr.published_s - 1) < 0.10


def test_u250_time_and_int8_tops():
    assert fm.gemm(fm.PRESETS["alveo-u250-fp32"], 1040, 1024, 1024).kernel_s == pytest.approx(2.32e-3, rel=0.1)
    assert fm.PRESETS["alveo-u250-int8"].peak_gflops == pytest.approx(7300, rel=0.1)


@pytest.mark.parametrize("name", fm.PRESETS)
def test_monotonic_in_size(name):
    pr = fm.PRESETS[name]
    for dims in ((64, 64, 64), (100, 200, 300), (1024, 1024, 1024)):
        base = fm.gemm(pr, *dims).total_s
        for i in range(3):
            bigger = list(dims)
            bigger[i] = bigger[i] * 2 + 1
            assert fm.gemm(pr, *bigger).total_s >= base


def test_monotonic_in_clock_and_bandwidth():
    pr = fm.PRESETS["alveo-u250-fp32"]
    for dims in ((4096, 4096, 4096), (8192, 64, 8192)):
        slow = fm.gemm(pr, *dims)
        assert fm.gemm(dataclasses.replace(pr, f_mhz=400), *dims).total_s <= slow.total_s
        assert fm.gemm(dataclasses.replace(pr, dram_gbps=20), *dims).total_s >= slow.total_s
        assert fm.gemm(dataclasses.replace(pr, pcie_gbps=24), *dims).total_s <= slow.total_s


def test_causal_attention_is_cheaper():
    pr = fm.PRESETS["alveo-u250-fp32"]
    p = dict(B=1, H=12, S=2048, D=64, causal=0)
    assert fm.attention(pr, p | {"causal": 1}).total_s < fm.attention(pr, p).total_s


def test_attention_model_follows_decode_gqa_and_cross_attention():
    """Stacking the query heads of a key/value head fills the array's rows (GQA decode is cheaper than MHA decode
    and reads a quarter of K and V over PCIe); fewer queries cost less; causal with L != S is no dearer."""
    pr = fm.PRESETS["alveo-u250-fp32"]
    mha = dict(B=1, H=32, S=4096, D=128, causal=0, L=1)
    gqa = fm.attention(pr, mha | {"Hkv": 8})
    assert gqa.total_s < fm.attention(pr, mha).total_s and gqa.pcie_s < fm.attention(pr, mha).pcie_s
    cross = dict(B=4, H=8, S=1500, D=64, causal=0)
    assert fm.attention(pr, cross | {"L": 448}).total_s < fm.attention(pr, cross).total_s
    assert fm.attention(pr, cross | {"L": 448, "causal": 1}).total_s <= fm.attention(pr, cross | {"L": 448}).total_s


def test_bad_preset_name():
    with pytest.raises(HeteroError) as exc:
        fm.preset("virtex-9000")
    msg = str(exc.value)
    assert "\n" not in msg and "'virtex-9000'" in msg and "alveo-u250-fp32" in msg
