import json

import numpy as np
import pandas as pd
import pytest

from hetero.scheduler.perfmodel import PerfModel, fit_power
from hetero.workloads import get

MM = get("matmul")


def case(m):
    return MM.case(dict(M=m, N=64, K=64))


def test_history_drops_first_and_rejects_outliers():
    pm = PerfModel()
    c = case(64)
    assert not pm.add("numba", "cpu", c, 9.0)  # first run dropped
    for s in (1.0, 1.1, 0.9):
        assert pm.add("numba", "cpu", c, s)
    assert not pm.add("numba", "cpu", c, 3.5)  # > 3x the recent mean after 3 samples: a glitch
    assert not pm.add("numba", "cpu", c, 0.3)  # < 1/3 of it
    h = pm.history("numba", "cpu", c)
    assert h.count == 3 and abs(h.mean - 1.0) < 1e-9 and h.rejected == 2 and h.std > 0
    assert pm.predict("numba", "cpu", c) == h.recent
    assert pm.predict("numba", "other", c) is None


def test_prediction_follows_a_lasting_change():
    # a CPU device slows 2x while its neighbour core is busy: predictions must follow within a few tasks,
    # while the history keeps the mean over everything
    pm = PerfModel()
    c = case(64)
    for s in [9.0] + [1.0] * 5:
        pm.add("numba", "cpu", c, s)
    for _ in range(4):
        assert pm.add("numba", "cpu", c, 2.0)
    assert 1.7 < pm.predict("numba", "cpu", c) < 2.0
    assert 1.3 < pm.history("numba", "cpu", c).mean < 1.5


def test_fit_predicts_unseen_sizes():
    pm = PerfModel()
    for m in (64, 128, 256, 512):
        c = case(m)
        for _ in range(3):
            pm.add("numba", "cpu", c, 1e-9 * MM.flops(c.p) + 1e-4)
    pred = pm.predict("numba", "cpu", case(1024))
    truth = 1e-9 * MM.flops(case(1024).p) + 1e-4
    assert abs(pred - truth) / truth < 0.1
    f = np.array([1e6, 1e7, 1e8])
    a, b, c = fit_power(f, 2e-9 * f**1.1)
    assert abs(b - 1.1) < 0.01 and c == 0.0


def test_save_load_roundtrip_and_corrupt_or_stale_files(tmp_path):
    path = tmp_path / "pm.json"
    pm = PerfModel(path)
    for s in (1, 2, 2, 2):
        pm.add("numba", "cpu", case(64), s)
    pm.save()
    back = PerfModel.load(path)
    assert back.predict("numba", "cpu", case(64)) == 2
    notes = []
    path.write_text("{not json")
    assert PerfModel.load(path, warn=notes.append).entries == {}
    data = json.loads(json.dumps({"schema": "hetero.perfmodel", "version": 0, "entries": []}))
    path.write_text(json.dumps(data))
    assert PerfModel.load(path, warn=notes.append).entries == {}
    assert len(notes) == 2 and all("\n" not in n and "rebuilt" in n for n in notes)
    assert "another version" in notes[1]


def test_ingest_bench_csv_fills_only_unmeasured_keys(tmp_path):
    c = case(64)
    rows = [
        dict(
            workload="matmul",
            shape=c.shape,
            dtype="float32",
            backend="numba",
            device="cpu",
            status="ok",
            median_s=0.5,
            flops=MM.flops(c.p),
        ),
        dict(
            workload="matmul",
            shape=c.shape,
            dtype="float32",
            backend="null",
            device="n",
            status="ok",
            median_s=0.25,
            flops=MM.flops(c.p),
        ),
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "bench.csv", index=False)
    pm = PerfModel()
    for s in (1, 1, 1):
        pm.add("null", "n", c, s)
    assert pm.ingest_csv(tmp_path / "bench.csv") == 1
    assert pm.predict("numba", "cpu", c) == 0.5 and pm.predict("null", "n", c) == 1


def test_call_overhead_is_kept_saved_and_a_corrupt_one_rebuilds(tmp_path):
    pm = PerfModel(tmp_path / "pm.json")
    assert pm.call_overhead("numba", "cpu") == 0.0  # unmeasured: nothing added
    for gap in (0.004, 0.005, 0.020):  # long gaps count too: a queue's end is their sum
        pm.add_call("numba", "cpu", gap)
    assert pm.calls[("numba", "cpu")].mean == pytest.approx(0.029 / 3)
    assert 0.004 < pm.call_overhead("numba", "cpu") < 0.020
    pm.save()
    back = PerfModel.load(pm.path)
    assert back.call_overhead("numba", "cpu") == pytest.approx(pm.call_overhead("numba", "cpu"))
    data = json.loads(pm.path.read_text())
    data["calls"][0]["mean"] = -1.0
    pm.path.write_text(json.dumps(data))
    notes = []
    again = PerfModel.load(pm.path, warn=notes.append)
    assert again.calls == {} and again.entries == {} and "calls[0] (numba cpu).mean is -1.0" in notes[0]


def test_a_prediction_says_what_it_rests_on(tmp_path):
    pm = PerfModel(tmp_path / "pm.json")
    w = get("matmul")
    small, big, other = (w.case(dict(M=n, N=n, K=n)) for n in (64, 128, 256))
    assert pm.basis("numba", "cpu", small) == "none"
    for _ in range(3):
        pm.add("numba", "cpu", small, 0.001)
        pm.add("numba", "cpu", big, 0.008)
    assert pm.basis("numba", "cpu", small) == "task" and pm.basis("numba", "cpu", other) == "fit"
