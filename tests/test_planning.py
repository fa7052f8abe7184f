"""Capacity planner arithmetic (no backend needed)."""

import math

import pytest

from bench.plan import cli
from hetero.errors import HeteroError
from hetero.planning import device_peak, measured_utilization, plan_serving, plan_training
from hetero.results import write_rows


def test_training_follows_six_n_t():
    # GPT-3: 175e9 params x 300e9 tokens = 3.15e23 FLOP; A100 bf16 312 TFLOP/s at 50% for 30 days.
    plan = plan_training(175e9, 300e9, 30 * 86400, device_peak("a100", "bfloat16"), 0.5)
    assert plan.required_flops == pytest.approx(3.15e23)
    assert plan.devices == math.ceil(3.15e23 / (156e12 * 30 * 86400)) == 780


def test_serving_follows_two_n_per_token():
    # 86400 users x 1 request/day x 100 words x 1.0 token/word = 100 tokens/s; 2 x 1e9 x 100 = 2e11 FLOP/s.
    plan = plan_serving(1e9, 86400, 1, "day", 100, 1.0, peak=1e11, utilization=0.5)
    assert plan.required_flops == pytest.approx(2e11) and plan.devices == 4
    assert plan_serving(1e9, 1, 1, "day", 1, 1.0, 1e15, 1.0).devices == 1  # never zero devices


def test_more_time_or_utilization_never_needs_more_devices():
    peak = device_peak("h100", "bfloat16")
    base = plan_training(7e9, 1e12, 10 * 86400, peak, 0.4).devices
    assert plan_training(7e9, 1e12, 20 * 86400, peak, 0.4).devices <= base
    assert plan_training(7e9, 1e12, 10 * 86400, peak, 0.8).devices <= base


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: device_peak("tpu", "bfloat16"), "unknown device 'tpu'"),
        (lambda: device_peak("arria10", "bfloat16"), "no published bfloat16 peak"),
        (lambda: plan_training(-1, 1, 1, 1, 0.5), "params=-1 must be a positive number"),
        (lambda: plan_training(1, 1, 1, 1, 1.5), "utilization=1.5"),
        (lambda: plan_serving(1, 1, 1, "week", 1, 1, 1, 0.5), "unknown period 'week'"),
    ],
)
def test_bad_input_names_the_value(call, match):
    with pytest.raises(HeteroError, match=match):
        call()


def test_measured_utilization_comes_from_result_files(tmp_path):
    row = dict(
        workload="matmul",
        shape="8x8x8",
        dtype="bfloat16",
        backend="cupy",
        device="NVIDIA H100 80GB HBM3",
        peer=False,
        status="ok",
        median_s=1.0,
        pct_peak=71.0,
    )
    write_rows(
        tmp_path / "gpu" / "bench.csv",
        [row, {**row, "backend": "torch-cuda", "peer": True, "pct_peak": 90.0}],
        list(row),
    )
    util, source = measured_utilization(tmp_path, "h100", "bfloat16")
    assert util == pytest.approx(0.71) and "cupy" in source  # peers are not our utilization
    with pytest.raises(HeteroError, match="no measured float32 matmul"):
        measured_utilization(tmp_path, "h100", "float32")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "bench.csv").write_text('x\n"')
    with pytest.raises(HeteroError, match="junk/bench.csv"):  # a measured figure never rests on a corrupt file
        measured_utilization(tmp_path, "h100", "bfloat16")


def test_cli_prints_a_modeled_plan_and_rejects_bad_input(capsys):
    assert (
        cli(
            [
                "train",
                "--params",
                "175e9",
                "--tokens",
                "300e9",
                "--days",
                "30",
                "--device",
                "a100",
                "--utilization",
                "0.5",
            ]
        )
        == 0
    )
    assert "780 x a100" in capsys.readouterr().out
    assert (
        cli(
            [
                "serve",
                "--params",
                "7e9",
                "--users",
                "10",
                "--requests-per-user",
                "1",
                "--words-per-answer",
                "5",
                "--utilization",
                "lots",
            ]
        )
        == 2
    )
    assert "--utilization 'lots'" in capsys.readouterr().err
