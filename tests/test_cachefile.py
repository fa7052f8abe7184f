"""Cache files (perf model, OpenCL tuning): checked field by field, kept as .bak when replaced, in
$HETERO_CACHE_DIR or the platform's cache folder, and merged under a lock when two runs write at once."""

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from hetero import cachefile
from hetero import opencl_util as ocl
from hetero.scheduler.perfmodel import PerfModel
from hetero.workloads import get

MM = get("matmul")


def case(m):
    return MM.case(dict(M=m, N=64, K=64))


def _saved_model(path):
    pm = PerfModel(path)
    for s in (1, 2, 2):
        pm.add("numba", "cpu", case(64), s)
    pm.save()
    return json.loads(path.read_text())


def _baks(path):
    return sorted(path.parent.glob(path.name + ".*.bak"))


@pytest.mark.parametrize(
    "where, value, named",
    [
        (("entries", 0, "flops"), "abc", "entries[0] (numba cpu matmul 64x64x64|float32).flops"),
        (("entries", 0, "count"), -2, ".count"),
        (("entries", 0, "recent"), float("nan"), ".recent"),
        (("entries", 0, "source"), "guess", ".source"),
        (("entries", 0, "backend"), 7, "entries[0].backend"),
        (("entries", 0, "colour"), "red", "unknown"),
    ],
)
def test_perf_model_bad_field_named_in_one_line_and_kept_as_bak(tmp_path, where, value, named):
    path = tmp_path / "pm.json"
    data = _saved_model(path)
    data[where[0]][where[1]][where[2]] = value
    bad = json.dumps(data)
    path.write_text(bad)
    notes = []
    pm = PerfModel.load(path, warn=notes.append)
    assert pm.entries == {} and len(notes) == 1 and "\n" not in notes[0]
    assert str(path) in notes[0] and named in notes[0], notes[0]
    pm.add("numpy", "cpu", case(32), 1.0, source="kernel")
    pm.save()  # the bad file is kept, never saved back
    (bak,) = _baks(path)
    assert bak.read_text() == bad and str(bak) in notes[1]
    assert PerfModel.load(path, warn=notes.append).entries.keys() == pm.entries.keys() and len(notes) == 2


@pytest.mark.parametrize("damage", ["truncated", "other version"])
def test_perf_model_unreadable_file_is_kept_as_bak_when_replaced(tmp_path, damage):
    path = tmp_path / "pm.json"
    data = _saved_model(path)
    text = path.read_text()[:-40] if damage == "truncated" else json.dumps(data | {"version": 99})
    path.write_text(text)
    notes = []
    pm = PerfModel.load(path, warn=notes.append)
    assert pm.entries == {} and len(notes) == 1 and str(path) in notes[0]
    assert ("truncated" if damage == "truncated" else "another version") in notes[0]
    pm.save()
    (bak,) = _baks(path)
    assert bak.read_text() == text and json.loads(path.read_text())["version"] != 99


def test_every_cache_file_is_in_hetero_cache_dir_or_the_platform_cache(tmp_path, monkeypatch):
    from platformdirs import user_cache_dir

    monkeypatch.delenv("HETERO_PERFMODEL", raising=False)
    monkeypatch.setenv("HETERO_CACHE_DIR", str(tmp_path))
    assert PerfModel().path == tmp_path / "perfmodel.json"
    assert PerfModel.load(warn=pytest.fail).path == tmp_path / "perfmodel.json"
    assert ocl.tuning_path() == tmp_path / "opencl-tuning.json"
    monkeypatch.delenv("HETERO_CACHE_DIR")
    assert cachefile.cache_dir() == ocl.cache_dir() and str(cachefile.cache_dir()) == user_cache_dir("hetero", False)
    assert PerfModel().path == cachefile.cache_dir() / "perfmodel.json"
    monkeypatch.setenv("HETERO_PERFMODEL", str(tmp_path / "mine.json"))
    assert PerfModel().path == tmp_path / "mine.json"


def test_a_run_that_read_only_kernel_medians_keeps_another_runs_task_samples(tmp_path):
    import pandas as pd

    path, c = tmp_path / "pm.json", case(64)
    reader, learner = PerfModel.load(path), PerfModel.load(path)
    for s in (1.0, 2.0, 2.0):
        learner.add("numba", "cpu", c, s)  # task samples, saved first
    learner.add("numba", "cpu", case(32), 1.0, source="kernel")
    learner.save()
    row = dict(
        workload="matmul",
        shape=c.shape,
        dtype="float32",
        backend="numba",
        device="cpu",
        status="ok",
        median_s=9.0,
        flops=1.0,
    )
    (tmp_path / "r").mkdir()
    pd.DataFrame([row]).to_csv(tmp_path / "r" / "bench.csv", index=False)
    assert reader.ingest_results(tmp_path) == 1  # a kernel median for the same key, read before the save
    reader.add("numpy", "cpu", c, 1.0, source="kernel")
    reader.save()
    back = PerfModel.load(path, warn=pytest.fail)
    assert back.entries[("numba", "cpu", "matmul", "64x64x64|float32")].source == "task"
    assert back.predict("numba", "cpu", c) == pytest.approx(learner.predict("numba", "cpu", c))
    assert len(back.entries) == 3


@pytest.mark.parametrize(
    "entry, named",
    [
        ({"config": {"BQ": "abc"}}, "entry 'k'.config.BQ"),
        ({"config": [1]}, "entry 'k'.config"),
        ({"config": {"BQ": 2}, "ms": "fast"}, "entry 'k'.ms"),
        ({"config": {"BQ": 2}, "gflops": {"a": "x"}}, "entry 'k'.gflops.a"),
        (3, "entry 'k'"),
    ],
)
def test_tuning_file_bad_field_named_and_kept_as_bak(tmp_path, entry, named):
    path = tmp_path / "tune.json"
    bad = json.dumps({"k": entry})
    path.write_text(bad)
    with pytest.warns(UserWarning) as caught:
        assert ocl.load_tuning(path) == {}
    msg = str(caught[0].message)
    assert "\n" not in msg and str(path) in msg and named in msg, msg
    with pytest.warns(UserWarning, match=r"\.bak"):
        ocl.save_tuning("k2", {"config": {"BQ": 4}}, path)
    (bak,) = _baks(path)
    assert bak.read_text() == bad and json.loads(path.read_text()) == {"k2": {"config": {"BQ": 4}}}
    with pytest.raises(cachefile.CacheError):
        ocl.save_tuning("k3", {"config": {"BQ": "abc"}}, path)  # nothing the next load would refuse


WRITER = textwrap.dedent("""
    import pathlib, sys, time
    kind, path, me, n = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    if kind == "perfmodel":
        from hetero.scheduler.perfmodel import PerfModel
        from hetero.workloads import get
        pm = PerfModel.load(path)
    else:
        from hetero import opencl_util as ocl
    (path.parent / f"ready-{me}").touch()
    while not (path.parent / "go").exists():      # both loaded before either saves
        time.sleep(0.005)
    for i in range(n):
        if kind == "perfmodel":
            pm.add(me, "cpu", get("matmul").case(dict(M=8 + i, N=8, K=8)), 1.0 + i, source="kernel")
            pm.save()
        else:
            ocl.save_tuning(f"{me}-{i}", {"config": {"BQ": i + 1}}, path)
""")


@pytest.mark.parametrize("kind", ["perfmodel", "tuning"])
def test_two_runs_writing_at_once_lose_no_entry(tmp_path, kind):
    path, n = tmp_path / f"{kind}.json", 30
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, kind, str(path), me, str(n)],
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "HETERO_CACHE_DIR": str(tmp_path)},
        )
        for me in "ab"
    ]
    try:
        while not all((tmp_path / f"ready-{me}").exists() for me in "ab"):
            assert all(p.poll() is None for p in procs), [p.communicate()[1][-2000:] for p in procs]
            time.sleep(0.01)
        (tmp_path / "go").touch()
        for p in procs:
            assert p.wait(timeout=120) == 0, p.communicate()[1][-2000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    if kind == "perfmodel":
        keys = {(k[0], k[3]) for k in PerfModel.load(path, warn=pytest.fail).entries}
        assert len(keys) == 2 * n and {b for b, _ in keys} == {"a", "b"}
    else:
        assert set(ocl.load_tuning(path)) == {f"{me}-{i}" for me in "ab" for i in range(n)}
