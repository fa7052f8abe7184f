"""Corrupt result files (a row cut short, a non-numeric or out-of-range cell, a bad meta.json field) are refused
with one line naming the file, row and column, and exit 2: in bench.report, bench.simulate --replay and
bench.plan --utilization measured."""

import json
import shutil
from pathlib import Path

import pytest

from bench.plan import cli as plan
from bench.report import cli as report
from bench.simulate import cli as simulate
from hetero.errors import HeteroError
from hetero.results import metadata, read_rows, write_metadata, write_rows

RESULTS = Path(__file__).resolve().parents[1] / "results"
ROW = dict(
    workload="matmul",
    shape="8x8x8",
    preset="p",
    dtype="float32",
    backend="numba",
    device="AMD EPYC",
    peer=False,
    status="ok",
    median_s=0.5,
    iqr_s=0.01,
    reps=5,
    gflops=1.5,
    pct_peak=40.0,
    timing="measured",
)


def _run(folder: Path, rows=(ROW, {**ROW, "backend": "numpy", "pct_peak": 20.0})) -> Path:
    write_rows(folder / "bench.csv", list(rows), list(ROW))
    write_metadata(folder / "meta.json", metadata({"numba": {"kind": "cpu", "peak_gflops": 100.0}}, ["test"]))
    return folder / "bench.csv"


def _one_line(capsys, *words):
    err = capsys.readouterr().err.strip().splitlines()
    hit = [line for line in err if all(w in line for w in words)]
    assert hit, err
    return hit[0]


def test_a_bench_csv_cut_mid_row_is_refused(tmp_path, capsys):
    path = _run(tmp_path / "r")
    path.write_text(path.read_text()[:-12])
    with pytest.raises(HeteroError, match=r"row 2 .*cut short"):
        read_rows(path)
    assert report(["--results", str(tmp_path), "--no-write"]) == 2
    _one_line(capsys, str(path), "row 2")


@pytest.mark.parametrize(
    "column, value",
    [
        ("median_s", "abc"),
        ("median_s", "0"),
        ("pct_peak", "-3"),
        ("reps", "2.5"),
        ("peer", "maybe"),
        ("status", "fine"),
    ],
)
def test_a_bad_cell_in_bench_csv_names_file_row_and_column(tmp_path, capsys, column, value):
    path = _run(tmp_path / "r")
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[2].split(",")
    cells[header.index(column)] = value
    path.write_text("\n".join([lines[0], lines[1], ",".join(cells)]) + "\n")
    assert report(["--results", str(tmp_path)]) == 2
    line = _one_line(capsys, str(path), "row 2", f"column {column}", repr(value))
    assert "Traceback" not in line and not (tmp_path / "README.md").exists()  # no README without the run


def _schedule_copy(tmp_path) -> Path:
    src = next(p for p in sorted(RESULTS.glob("schedule-*")) if (p / "trace.json").exists())
    dst = tmp_path / src.name
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("replay.csv"))
    return dst


def _set_cell(path: Path, row: int, column: str, value: str) -> None:
    import pandas as pd

    df = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype=str)
    df.loc[row - 1, column] = value
    df.to_csv(path, index=False)


@pytest.mark.parametrize("value", ["0", "abc"])
def test_replay_of_a_bad_schedule_csv_is_one_line(tmp_path, capsys, value):
    run = _schedule_copy(tmp_path)
    _set_cell(run / "schedule.csv", 2, "makespan_s", value)
    assert simulate(["--replay", str(run), "--out", str(tmp_path / "out")]) == 2
    _one_line(capsys, str(run / "schedule.csv"), "row 2", "column makespan_s")
    assert report(["--results", str(tmp_path), "--no-write"]) == 2
    _one_line(capsys, str(run / "schedule.csv"), "row 2", "column makespan_s")


@pytest.mark.parametrize("field, value", [("transfer_latency_s", "abc"), ("supports", "all"), ("peak_gflops", "fast")])
def test_a_bad_meta_json_field_is_one_line(tmp_path, capsys, field, value):
    run = _schedule_copy(tmp_path)
    meta = json.loads((run / "meta.json").read_text())
    name = next(iter(meta["devices"]))
    meta["devices"][name][field] = value
    (run / "meta.json").write_text(json.dumps(meta))
    assert simulate(["--replay", str(run), "--out", str(tmp_path / "out")]) == 2
    _one_line(capsys, str(run / "meta.json"), f"devices.{name}.{field}", repr(value))
    assert report(["--results", str(tmp_path), "--no-write"]) == 2
    _one_line(capsys, str(run / "meta.json"), f"devices.{name}.{field}")


PLAN = [
    "train",
    "--params",
    "7e9",
    "--tokens",
    "1e12",
    "--days",
    "30",
    "--device",
    "h100",
    "--dtype",
    "float32",
    "--utilization",
    "measured",
]


@pytest.mark.parametrize(
    "pct, words",
    [
        ("1e9", ("row 1", "column pct_peak")),
        ("abc", ("row 1", "column pct_peak")),
        ("150", ("row 1", "column pct_peak", "above 100%")),
    ],
)
def test_plan_measured_refuses_a_bad_or_impossible_pct_peak(tmp_path, capsys, pct, words):
    path = _run(tmp_path / "r", [{**ROW, "device": "NVIDIA H100", "backend": "cupy"}])
    _set_cell(path, 1, "pct_peak", pct)
    assert plan(PLAN + ["--results", str(tmp_path)]) == 2
    _one_line(capsys, str(path), *words)
    _set_cell(path, 1, "pct_peak", "40")
    assert plan(PLAN + ["--results", str(tmp_path)]) == 0
    assert "40% utilization" in capsys.readouterr().out


def test_the_perf_model_names_the_bad_cell_of_a_results_file_it_skips(tmp_path):
    from hetero.scheduler.perfmodel import PerfModel

    path = _run(tmp_path / "r")
    _set_cell(path, 2, "median_s", "abc")
    notes = []
    assert PerfModel(tmp_path / "pm.json").ingest_results(tmp_path, warn=notes.append) == 0
    assert len(notes) == 1 and str(path) in notes[0] and "row 2, column median_s" in notes[0], notes
