"""Timing statistics and result files need no backend."""

import pytest

from hetero.errors import HeteroError
from hetero.ratios import add_ratios
from hetero.results import atomic_write, read_rows, read_samples, write_rows, write_samples
from hetero.runner import COLUMNS, RunConfig
from hetero.timing import measure, measure_interleaved


class FakeKernel:
    def __init__(self, times):
        self.times, self.calls = list(times), 0

    def __call__(self):
        self.calls += 1
        return self.times[min(self.calls - 1, len(self.times) - 1)]


def test_measure_keeps_samples_and_reports_median_and_iqr():
    m = measure(FakeKernel([9.0, 1.0, 2.0, 3.0, 4.0]), warmup_s=0, budget_s=0, min_reps=4)
    assert m.first_call_s >= 0 and m.reps == 4
    assert m.samples == [1.0, 2.0, 3.0, 4.0]  # the first (cold) call is not a sample
    assert m.median == 2.5 and m.iqr == pytest.approx(1.5) and m.noisy


def test_measure_respects_the_time_budget_and_max_reps():
    m = measure(FakeKernel([1e-6]), warmup_s=0.0, budget_s=0.02, min_reps=1, max_reps=50)
    assert m.reps == 50 and not m.noisy


def test_at_least_five_reps_whatever_the_budget():
    """Five is the floor: IQR needs four to flag a noisy row, and a rank test of 5 against 5 can reach p < 0.01."""
    assert measure(FakeKernel([1.0]), warmup_s=0, budget_s=0).reps == 5
    assert RunConfig().min_reps == 5


def test_timed_reps_start_after_the_spin_of_an_idle_blas_pool():
    """By default no timed rep starts within ~0.1 s of the first call: OpenBLAS's idle workers, busy after the
    reference or a NumPy peer, spin that long and would share the backend's cores."""
    import time

    stamps = []

    def kernel():
        stamps.append(time.perf_counter())
        return 1e-3

    m = measure(kernel, budget_s=0.0, min_reps=2)
    assert m.reps == 2 and stamps[-2] - stamps[0] >= 0.1


def test_a_case_is_timed_in_turns_so_a_slow_spell_falls_on_every_backend():
    """Two kernels timed in turns: each gets its samples in every round, so a spell in which the machine runs at
    half speed, lasting one round, slows both kernels' samples alike, and a kernel that raises leaves the turns
    without stopping the others."""
    calls, clock = [], {"slow": False}

    def kernel(name, seconds):
        def call():
            calls.append(name)
            return seconds * (2 if clock["slow"] else 1)

        return call

    class Spell:  # the machine slows down during the second round of turns
        def __init__(self, inner):
            self.inner, self.n = inner, 0

        def __call__(self):
            self.n += 1
            clock["slow"] = 3 <= self.n <= 4  # calls 3-4 of the first kernel: its second turn and b's after it
            return self.inner()

    def broken():
        raise RuntimeError("device lost")

    a, b = Spell(kernel("a", 1.0)), kernel("b", 2.0)
    ma, mb, mc = measure_interleaved([a, b, broken], warmup_s=0, budget_s=0, min_reps=4, rounds=2)
    assert isinstance(mc, RuntimeError) and ma.reps == mb.reps == 4
    assert calls[:4] == ["a", "a", "a", "b"]  # a's first call and turn, then b's first call ...
    assert ma.samples == [1.0, 2.0, 2.0, 1.0] and mb.samples == [4.0, 4.0, 2.0, 2.0]
    assert mb.median / ma.median == pytest.approx(2.0)  # the ratio of the two holds through the spell


def test_ratios_use_baseline_and_best_peer():
    rows = [
        dict(workload="w", shape="s", dtype="float32", backend=b, peer=p, status="ok", median_s=t)
        for b, p, t in [("numpy", False, 4.0), ("numba", False, 1.0), ("torch", True, 2.0), ("tf", True, 3.0)]
    ]
    rows.append(dict(workload="w", shape="s", dtype="float32", backend="bad", peer=False, status="wrong"))
    add_ratios(rows, "numpy")
    numba = rows[1]
    assert numba["speedup"] == 4.0 and numba["best_peer"] == "torch" and numba["vs_best_peer"] == 2.0
    assert "speedup" not in rows[-1]  # a wrong result never becomes a speedup


def test_modeled_times_are_divided_only_by_modeled_times():
    """A model's time over a stopwatch's is no speedup: ratios are taken within modeled or within measured rows."""
    rows = [
        dict(workload="w", shape="s", dtype="float32", backend=b, peer=p, status="ok", median_s=t, timing=tm)
        for b, p, t, tm in [
            ("numpy", False, 4.0, "measured-wall-clock"),
            ("fpga-emu", False, 1.0, "modeled"),
            ("torch", True, 2.0, "measured-wall-clock"),
            ("numba", False, 2.0, "wall"),
            ("fpga-model", False, 2.0, "modeled"),
        ]
    ]
    rows[1].update(speedup=4.0, best_peer="torch", vs_best_peer=2.0)  # stale ratios, as read from an old file
    add_ratios(rows, "numpy")
    fpga, numba = rows[1], rows[3]
    assert numba["speedup"] == 2.0 and numba["vs_best_peer"] == 1.0
    assert {"speedup", "best_peer", "vs_best_peer"}.isdisjoint(fpga)  # no modeled baseline or peer: blank


def test_samples_file_is_long_and_pandas_loadable(tmp_path):
    rows = [
        dict(
            workload="matmul",
            shape="2x2x2",
            dtype="float32",
            backend="numba",
            timing="measured-wall-clock",
            samples=[1.0, 2.0, 3.0],
        ),
        dict(workload="matmul", shape="2x2x2", dtype="float32", backend="x"),
    ]
    write_samples(tmp_path / "samples.csv", rows)
    df = read_samples(tmp_path / "samples.csv")
    assert df.seconds.tolist() == [1.0, 2.0, 3.0] and df.rep.tolist() == [0, 1, 2] and set(df.backend) == {"numba"}
    assert read_samples(tmp_path / "none.csv") is None


def test_atomic_write_keeps_the_old_file_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "bench.csv"
    atomic_write(path, "old\n")

    def boom(*a):
        raise KeyboardInterrupt

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, "new\n")
    assert path.read_text() == "old\n" and list(tmp_path.iterdir()) == [path]


def test_rows_round_trip_and_corrupt_files_are_reported(tmp_path):
    path = tmp_path / "bench.csv"
    write_rows(path, [dict(workload="matmul", shape="1x1x1", backend="numba", median_s=0.5)], COLUMNS)
    df = read_rows(path)
    assert list(df.columns) == COLUMNS and df.loc[0, "median_s"] == 0.5
    (tmp_path / "bad.csv").write_text('a,b\n1,"2\n')
    with pytest.raises(HeteroError, match="corrupt results file"):
        read_rows(tmp_path / "bad.csv")
    (tmp_path / "cols.csv").write_text("x,y\n1,2\n")
    with pytest.raises(HeteroError, match="missing column"):
        read_rows(tmp_path / "cols.csv")
    with pytest.raises(HeteroError, match="no results file"):
        read_rows(tmp_path / "none.csv")
