"""fpga-emu: real results from the systolic emulation on OpenCL, modeled time, preset in the device name."""

import pytest

from hetero import fpga_model as fm
from hetero.backends.base import MODELED
from hetero.backends.registry import backend_class, get
from hetero.errors import HeteroError
from hetero.testing import parity
from hetero.workloads import WORKLOADS

REASON = backend_class("fpga-emu").unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"fpga-emu unavailable: {REASON}")
QUICK = [c for w in WORKLOADS.values() for c in w.preset_cases("quick")]


@pytest.mark.parametrize("case", QUICK, ids=lambda c: f"{c.workload}-{c.preset}")
def test_parity(case):
    reason = backend_class("fpga-emu")().unsupported(case)
    if reason:
        pytest.skip(reason)
    ok, abs_err, rel_err = parity("fpga-emu", case)
    assert ok, f"max abs err {abs_err}, rel {rel_err}"


@pytest.mark.parametrize("preset", ["arria10-pac-fp32", "stratix10-d5005-fp32"])
def test_parity_other_arrays(preset):
    case = WORKLOADS["matmul"].preset_cases("quick-odd")[0]
    assert parity("fpga-emu", case, device=preset)[0]


def test_int8_matmul_exact():
    case = WORKLOADS["matmul"].preset_cases("quick", "int8")[1]
    ok, abs_err, _ = parity("fpga-emu", case, device="alveo-u250-int8")
    assert ok and abs_err == 0


def test_modeled_time_and_emulation_wall_apart():
    case = WORKLOADS["matmul"].preset_cases("quick-128")[0]
    backend = get("fpga-emu")
    kernel = backend.prepare(case, WORKLOADS["matmul"].make_inputs(case))
    seconds = kernel()
    pr = fm.PRESETS[fm.DEFAULT]
    assert kernel.timing == MODELED and seconds == fm.gemm(pr, 128, 96, 160).total_s
    assert kernel.emu_wall_s is not None and kernel.emu_wall_s > 0
    dev = backend.device()
    assert dev.name == f"fpga-emu:{fm.DEFAULT} (model {fm.MODEL_VERSION})" and fm.MODEL_VERSION in dev.peak_source


def test_preset_from_env(monkeypatch):
    monkeypatch.setenv("HETERO_FPGA_PRESET", "arria10-pac-fp32")
    assert "arria10-pac-fp32" in get("fpga-emu").device().name


def test_bad_preset_message():
    with pytest.raises(HeteroError) as exc:
        get("fpga-emu", device="nope").device()
    msg = str(exc.value)
    assert "\n" not in msg and "unknown FPGA preset 'nope'; valid: alveo-u250-fp32" in msg


def test_bench_run_all_workloads_on_opencl_and_fpga_emu(tmp_path):
    """Issue 3's command, on the quick presets: every row correct, fpga-emu rows modeled."""
    from bench.run import cli
    from hetero.results import read_rows

    assert (
        cli(
            [
                "--workload",
                "all",
                "--backends",
                "numpy,numba,opencl,fpga-emu",
                "--quick",
                "--budget",
                "0.02",
                "--out",
                str(tmp_path),
                "--strict",
            ]
        )
        == 0
    )
    df = read_rows(next(tmp_path.glob("*/bench.csv")))
    assert set(df.backend) >= {"numpy", "numba", "opencl", "fpga-emu"} and (df.status == "ok").all()
    assert (df[df.backend == "fpga-emu"].timing == "modeled").all()
