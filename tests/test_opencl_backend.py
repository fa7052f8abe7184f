"""opencl backend: parity on the quick presets, device choice errors, the autotuner's on-disk memory."""

import json

import pytest

from hetero import opencl_util as ocl
from hetero.backends.base import MEASURED_DEVICE
from hetero.backends.registry import backend_class, get
from hetero.errors import HeteroError
from hetero.testing import parity
from hetero.workloads import WORKLOADS

REASON = backend_class("opencl").unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"opencl unavailable: {REASON}")
QUICK = [c for w in WORKLOADS.values() for c in w.preset_cases("quick")]


@pytest.fixture(autouse=True)
def _tuning_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("HETERO_CACHE_DIR", str(tmp_path))
    # one fixed config: the tests check results, not speed, and skip the tuning runs
    monkeypatch.setattr("hetero.kernels.matmul.opencl_matmul.tuned", lambda rt, path=None: dict(TM=8, VW=8, NV=1))
    monkeypatch.setattr("hetero.kernels.attention.opencl_attention.tuned", lambda rt, path=None: dict(BQ=4))


@pytest.mark.parametrize("case", QUICK, ids=lambda c: f"{c.workload}-{c.preset}")
def test_parity(case):
    reason = backend_class("opencl")().unsupported(case)
    if reason:
        pytest.skip(reason)
    ok, abs_err, rel_err = parity("opencl", case)
    assert ok, f"max abs err {abs_err}, rel {rel_err}"


def test_timing_label_and_seconds():
    case = QUICK[0]
    kernel = get("opencl").prepare(case, WORKLOADS[case.workload].make_inputs(case))
    assert kernel.timing == MEASURED_DEVICE and 0 < kernel() < 1


def test_device_choice_by_index_and_name():
    label, dev = ocl.all_devices()[0]
    assert ocl.pick_device(label) == dev and ocl.pick_device("0") == dev
    assert ocl.pick_device(dev.name.split()[0][:4]) == dev


def test_bad_device_name(monkeypatch):
    with pytest.raises(HeteroError) as exc:
        get("opencl", device="no-such-xyz").device()
    msg = str(exc.value)
    assert "\n" not in msg and "no OpenCL device matches 'no-such-xyz'; available: 0:0" in msg
    monkeypatch.setenv("HETERO_OPENCL_DEVICE", "nope")
    with pytest.raises(HeteroError, match="'nope'"):
        ocl.pick_device(None)


def test_build_error_names_cl_error(tmp_path):
    bad = tmp_path / "bad.cl"
    bad.write_text("__kernel void f() { this is not C }")
    rt = ocl.runtime(ocl.pick_device(None))
    with pytest.raises(HeteroError) as exc:
        rt.program(bad)
    first = str(exc.value).splitlines()[0]
    assert "CL_BUILD_PROGRAM_FAILURE" in first and "bad.cl" in first and "\n" in str(exc.value)  # + build log


def test_tuning_round_trip_and_corrupt_file(tmp_path, monkeypatch):
    path = tmp_path / "tune.json"
    ocl.save_tuning("k", {"config": {"BQ": 2}}, path)
    assert ocl.load_tuning(path) == {"k": {"config": {"BQ": 2}}}
    path.write_text("{not json")
    with pytest.warns(UserWarning, match="corrupt"):
        assert ocl.load_tuning(path) == {}
    with pytest.warns(UserWarning, match="rebuilt"):
        ocl.save_tuning("k2", {"config": {"BQ": 4}}, path)  # the corrupt file is named again, kept, rebuilt
    assert json.loads(path.read_text()) == {"k2": {"config": {"BQ": 4}}}


def test_autotuner_picks_and_remembers(tmp_path, monkeypatch):
    import hetero.kernels.attention.opencl_attention as att

    monkeypatch.undo()  # the real tuner, on a small attention shape
    monkeypatch.setattr(att, "TUNE_SHAPE", (1, 1, 64, 8))
    path = tmp_path / "t.json"
    rt = ocl.runtime(ocl.pick_device(None))
    best = att.tuned(rt, path)
    assert best in [dict(c) for c in att.CANDIDATES]
    monkeypatch.setattr(att, "_time_config", lambda *a, **k: pytest.fail("should come from the file"))
    assert att.tuned(rt, path) == best


@pytest.mark.parametrize("batch", [1, 3])
def test_gemm_packs_ragged_operands_either_way(batch):
    """Gemm on sizes that are no whole number of tiles or of pack_f32's k-chunks, A read along k (row-major) and
    B along rows (its columns contiguous), or both the other way (transposed views), batched or not."""
    import numpy as np

    from hetero.kernels.matmul.opencl_matmul import PACK_KC, Gemm, Operand

    rt = get("opencl")._runtime()
    M, N, K = 13, 37, 2 * PACK_KC + 3
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((batch, M, K), np.float32), rng.standard_normal((batch, K, N), np.float32)
    want = np.einsum("bmk,bkn->bmn", a.astype(np.float64), b.astype(np.float64))
    at, bt = np.ascontiguousarray(a.transpose(0, 2, 1)), np.ascontiguousarray(b.transpose(0, 2, 1))
    s = lambda n: n if batch > 1 else 0  # noqa: E731
    for ops in (
        (Operand(rt.buffer(a), M, K, 1, s(M * K)), Operand(rt.buffer(b), N, 1, N, s(K * N))),
        (Operand(rt.buffer(at), M, 1, M, s(M * K)), Operand(rt.buffer(bt), N, K, 1, s(K * N))),
    ):
        c = rt.buffer(nbytes=batch * M * N * 4)
        ocl.event_seconds(Gemm(rt, M, N, K, batch=batch).enqueue(*ops, c, N, s(M * N)))
        got = np.empty((batch, M, N), np.float32)
        rt.read(got, c)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
