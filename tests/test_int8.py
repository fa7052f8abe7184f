"""int8: quantization (no backend), the exact gate, quant_err apart from it, and each backend's int8 kernels
against the integer product of the same quantized inputs (skipped with its reason where a backend is missing)."""

import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import backend_params
from hetero.backends import registry
from hetero.backends.registry import backend_class
from hetero.runner import RunConfig, case_io, run_one
from hetero.testing import parity
from hetero.workloads import check, get, quant

INT8_CASES = [c for w in quant.INT8 for c in get(w).preset_cases("quick", "int8")] + [
    get("matmul").case(dict(M=70, N=100, K=1030), "int8"),  # K past 1024 and not a multiple of 4; M, N untiled
    get("conv2d").case(dict(N=2, C=20, H=9, W=9, K=33, R=3, S=3, padding=1), "int8"),  # numba: the GEMM way
    get("conv2d").case(dict(N=1, C=32, H=7, W=6, K=8, R=3, S=2, stride=2, groups=2), "int8"),  # GEMM, grouped
    # numba's direct way in exact float32: depthwise at stride 2 (int8 rows widened eight pairs a step), cg = 3
    get("conv2d").case(dict(N=2, C=8, H=20, W=37, K=8, R=3, S=3, stride=2, padding=1, groups=8), "int8"),
    get("conv2d").case(dict(N=1, C=6, H=9, W=10, K=6, R=5, S=3, padding=1, groups=2), "int8"),
    # cg*R*S = 1215 > 1024: past float32's exact range, the int32 loops
    get("conv2d").case(dict(N=1, C=30, H=10, W=10, K=2, R=9, S=9, padding=4, groups=2), "int8"),
]


def _id(c):
    return f"{c.workload}-{c.shape}".replace(" ", "-")


# -- no backend ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", quant.SCHEMES)
def test_quantize_is_symmetric_in_range_and_scales_factor_out(scheme):
    case = get("matmul").case(dict(M=6, N=5, K=7, batch=2), "int8")
    inputs = get("matmul").make_inputs(case)
    qz = quant.quantize(case, inputs, scheme)
    a, b = qz.inputs["a"], qz.inputs["b"]
    assert a.dtype == b.dtype == np.int8 and np.abs(a).max() == 127 and a.min() >= -127
    want = {"channel": ((2, 6, 1), (2, 1, 5)), "tensor": ((1, 1, 1), (1, 1, 1))}[scheme]
    assert (qz.scales["a"].shape, qz.scales["b"].shape) == want
    assert np.abs(a * qz.scales["a"] - inputs["a"]).max() <= qz.scales["a"].max() / 2 + 1e-7


def test_integer_reference_is_the_exact_integer_product():
    case = get("matmul").case(dict(M=9, N=11, K=2000), "int8")
    qz = quant.quantize(case, get("matmul").make_inputs(case))
    exact = qz.inputs["a"].astype(np.int64) @ qz.inputs["b"].astype(np.int64)
    assert np.array_equal(quant.int_reference(case, qz), exact)


def test_the_gate_is_exact_off_by_one_fails():
    ref = np.arange(12.0).reshape(3, 4) * 1000
    out = ref.astype(np.int32)
    assert check(out, ref, "int8")[0]
    out[1, 2] += 1
    assert not check(out, ref, "int8")[0]


def test_quant_err_is_reported_not_gated_and_per_channel_wins_on_spread_channels():
    case = get("matmul").case(dict(M=64, N=48, K=256), "int8")
    inputs, ref, extra = case_io(case, RunConfig())
    assert extra["quant"] == "channel" and 0 < extra["quant_err"] < extra["quant_err_tensor"] < 0.05
    assert inputs["a"].dtype == np.int8 and np.array_equal(ref, np.rint(ref))
    # Weights whose output channels differ in size (as trained layers' do): per-channel scales keep the small
    # channels' precision, one scale per tensor does not.
    f = get("matmul").make_inputs(case)
    f["b"] = f["b"] * np.geomspace(0.01, 1, 48, dtype=np.float32)
    err = quant.accuracy(case, get("matmul").reference(case, f), f)
    assert err["channel"] <= 0.5 * err["tensor"]


def test_conv2d_bias_is_added_after_dequantizing():
    case = get("conv2d").preset_cases("quick-odd", "int8")[0]
    inputs = get("conv2d").make_inputs(case)
    inputs["bias"] = np.linspace(-3, 3, case.p["K"]).astype(np.float32)
    qz = quant.quantize(case, inputs)
    assert "bias" not in qz.inputs
    deq = quant.dequantize(case, quant.int_reference(case, qz), qz)
    assert quant.quant_err(deq, get("conv2d").reference(case, inputs)) < 0.02


def test_cli_int8_rows_carry_quant_err(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "bench.run", "--workload", "matmul", "--quick", "--dtype", "float32,int8"]
        + ["--backends", "numpy", "--out", str(tmp_path), "--name", "t", "--quant", "tensor"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    from hetero.results import read_rows

    df = read_rows(tmp_path / "t" / "bench.csv")
    i8 = df[df.dtype == "int8"]
    assert len(i8) and (i8.status == "ok").all() and (i8.max_abs_err == 0).all()
    assert (i8.quant == "tensor").all() and (i8.quant_err == i8.quant_err_tensor).all()
    assert df[df.dtype == "float32"].quant_err.isna().all()


# -- each backend --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", backend_params(exclude=("cupy", "torch-cuda")))
@pytest.mark.parametrize("case", INT8_CASES, ids=_id)
def test_int8_is_exact(backend, case):
    kw = {"device": "alveo-u250-int8"} if backend == "fpga-emu" else {}
    reason = registry.get(backend, **kw).unsupported(case)
    if reason:
        pytest.skip(reason)
    for scheme in quant.SCHEMES:
        ok, abs_err, _ = parity(backend, case, scheme=scheme, **kw)
        assert ok, f"{backend} {case.shape} ({scheme}): max abs err {abs_err}"


def test_int8_kernels_where_promised():
    """Which backends run int8; the others say so."""
    assert "int8" in backend_class("numba").dtypes["conv2d"] and "int8" in backend_class("cupy").dtypes["matmul"]
    assert "int8" in backend_class("opencl").dtypes["matmul"]
    case = get("conv2d").preset_cases("quick-odd", "int8")[0]
    assert "int8 conv2d not supported by torch" in registry.get("torch").unsupported(case)


def test_fpga_emu_int8_preset_only():
    if backend_class("fpga-emu").unavailable():
        pytest.skip(backend_class("fpga-emu").unavailable())
    case = get("matmul").preset_cases("quick-odd", "int8")[0]
    reason = registry.get("fpga-emu").unsupported(case)
    assert "not supported by fpga-emu" in reason and "--fpga-preset alveo-u250-int8" in reason
    assert registry.get("fpga-emu", device="alveo-u250-int8").unsupported(case) is None


@pytest.mark.parametrize("isa,op,count", [("amx", "tdpbssd", 4), ("vnni", "vpdpbusd", 16), ("avx2", "vpmaddwd", 12)])
def test_numba_microkernels_emit_the_cpus_int8_instructions(isa, op, count):
    """Each microkernel's machine code has one `op` per accumulator a step; its GEMM is exact (the gemm the
    backend calls picks the best the CPU has; this runs each one the CPU can)."""
    from hetero.kernels.matmul import numba_amx, numba_int8

    if backend_class("numba").unavailable():
        pytest.skip(backend_class("numba").unavailable())
    if not numba_int8.HAVE[isa]:
        pytest.skip(f"this CPU has no {isa} (or, for amx, Linux did not grant the tile state)")
    asm = numba_amx.tile_asm() if isa == "amx" else numba_int8.tile_asm(isa)
    assert len(re.findall(rf"\b{op}\b", asm)) >= count
    # the epilogue takes VNNI's unsigned offset off (one vpsubd an accumulator); AVX2's and AMX's signed
    # products have none
    assert len(re.findall(r"\bvpsubd\b", asm)) >= count if isa == "vnni" else not re.search(r"\bvpsubd\b", asm)
    rng = np.random.default_rng(0)
    # (M, K, N): edges of every packing path (rows past a panel, K not a multiple of 4 or 2, columns past a
    # panel), whole panels with none, (AVX2) column panels in several chunks (B_CHUNK_BYTES), and (AMX) A read in
    # place and C stored in place (M a multiple of 32, K of 64, N of 32)
    for M, K, N in [(37, 1030, 41), (1, 1, 1), (9, 1031, 33), (24, 8, 96), (13, 4097, 80), (64, 128, 96)]:
        a, b = rng.integers(-128, 128, (M, K), dtype=np.int8), rng.integers(-128, 128, (K, N), dtype=np.int8)
        out = np.empty((M, N), np.int32)
        numba_int8.gemm_on(isa, a, b, out)
        assert np.array_equal(out, a.astype(np.int64) @ b.astype(np.int64)), (M, K, N)


@pytest.mark.parametrize("backend", ["opencl", "fpga-emu"])
@pytest.mark.parametrize("workload", ["conv2d", "conv_transpose2d"])
def test_conv_bias(backend, workload):
    if backend_class(backend).unavailable():
        pytest.skip(backend_class(backend).unavailable())
    for case in get(workload).preset_cases("quick"):
        inputs = get(workload).make_inputs(case, 3)
        inputs["bias"] = np.linspace(-2, 2, case.p["K"]).astype(np.float32)
        kernel = registry.get(backend).prepare(case, inputs)
        kernel()
        ok, abs_err, _ = check(kernel.result(), get(workload).reference(case, inputs), "float32")
        assert ok, f"{backend} {workload} {case.shape} with bias: max abs err {abs_err:.3g}"


def test_runner_row_is_wrong_when_one_accumulator_is_off():
    from hetero.backends.base import Backend, Device, HostKernel

    class OffByOne(Backend):
        name = "off-by-one"
        dtypes = {"matmul": ("int8",)}

        def device(self):
            return Device(name="host", kind="cpu", cores=1)

        def _prepare(self, case, inputs):
            def fn(out):
                out[...] = inputs["a"].astype(np.int32) @ inputs["b"].astype(np.int32)
                out[0, 0] += 1

            return HostKernel(fn, np.empty(get("matmul").out_shape(case.p), np.int32))

    case = get("matmul").preset_cases("quick-odd", "int8")[0]
    inputs, ref, _ = case_io(case, RunConfig())
    row = run_one(case, OffByOne(), inputs, ref, RunConfig())
    assert row["status"] == "wrong" and row["max_abs_err"] == 1


def test_cupy_int8_path_choice_needs_no_gpu():
    """cuBLAS's int8 GEMM where every dimension is a multiple of 4 (its int8 kernels' rule), __dp4a otherwise."""
    from hetero.kernels.matmul import cupy_int8

    assert cupy_int8.path(1056, 1024, 1024) == "cublas"
    assert [cupy_int8.path(*s) for s in ((67, 45, 93), (64, 64, 1030), (64, 62, 64))] == ["dp4a"] * 3
