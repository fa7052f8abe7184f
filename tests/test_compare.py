"""bench.compare on small hand-made run folders (and once on two real tiny runs): verdicts, rows in one run only,
runs without samples, modeled against measured, exit codes, output formats, bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from bench.compare import cli
from hetero.compare import FALLBACK, SAMPLES, bootstrap_ratio_ci, compare_runs, load_run
from hetero.results import write_rows, write_samples
from hetero.runner import COLUMNS
from hetero.workloads import get

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def times(scale, n=20, seed=0):
    """n timed repetitions around `scale` seconds with 1% noise (a fixed seed: the same noise each call)."""
    return list(scale * (1 + 0.01 * np.random.default_rng(seed).standard_normal(n)))


def make_run(folder, rows, samples=True):
    """rows: (backend, samples, timing) -> a run folder with bench.csv and, when samples, samples.csv."""
    out = []
    for backend, s, timing in rows:
        out.append(
            dict(
                workload="matmul",
                shape="64x64x64",
                dtype="float32",
                backend=backend,
                status="ok",
                median_s=float(np.median(s)),
                iqr_s=float(np.subtract(*np.percentile(s, [75, 25]))),
                reps=len(s),
                timing=timing,
                samples=s,
            )
        )
    write_rows(folder / "bench.csv", out, COLUMNS)
    if samples:
        write_samples(folder / "samples.csv", out)
    return folder


def compare(tmp_path, base_rows, new_rows, samples=True, **kw):
    base = make_run(tmp_path / "base", base_rows, samples)
    new = make_run(tmp_path / "new", new_rows, samples)
    return compare_runs(load_run(base), load_run(new), **kw).set_index("backend")


W = "measured-wall-clock"


def test_verdicts_on_samples(tmp_path):
    base = times(1e-3)
    df = compare(
        tmp_path,
        [("slow", base, W), ("same", base, W), ("small", base, W), ("fast", base, W)],
        [
            ("slow", times(1.5e-3, seed=1), W),
            ("same", base, W),
            ("small", [t * 1.02 for t in base], W),
            ("fast", times(0.7e-3, seed=2), W),
        ],
    )
    assert df.loc["slow", "verdict"] == "slower" and df.loc["slow", "ci_low"] > 1.4
    assert df.loc["same", "verdict"] == "same" and df.loc["same", "ratio"] == 1.0
    # 2% slower and significant, but under the 5% minimum effect: same
    assert df.loc["small", "p_value"] < 0.05 and df.loc["small", "verdict"] == "same"
    assert df.loc["fast", "verdict"] == "faster" and df.loc["fast", "ci_high"] < 0.75
    assert (df.basis == SAMPLES).all()


def test_threshold_decides_a_small_significant_change(tmp_path):
    base = times(1e-3)
    df = compare(tmp_path, [("small", base, W)], [("small", [t * 1.02 for t in base], W)], threshold=0.01)
    assert df.loc["small", "verdict"] == "slower"


def test_noise_alone_is_not_a_verdict(tmp_path):
    """Two draws from one distribution: no significant difference, whatever the ratio of medians."""
    df = compare(tmp_path, [("b", times(1e-3, n=5, seed=3), W)], [("b", times(1e-3, n=5, seed=4), W)], threshold=0.0)
    assert df.loc["b", "verdict"] == "same" and df.loc["b", "p_value"] > 0.05


def test_bootstrap_interval_is_seeded_and_holds_the_ratio():
    base, new = np.array(times(1.0)), np.array(times(2.0, seed=1))
    lo, hi = bootstrap_ratio_ci(base, new)
    assert (lo, hi) == bootstrap_ratio_ci(base, new) and lo < np.median(new) / np.median(base) < hi


def test_rows_in_one_run_only_are_listed(tmp_path):
    df = compare(
        tmp_path, [("a", times(1e-3), W), ("gone", times(1e-3), W)], [("a", times(1e-3), W), ("added", times(1e-3), W)]
    )
    assert df.loc["gone", "verdict"] == "only in BASE" and df.loc["added", "verdict"] == "only in NEW"
    assert pd.isna(df.loc["gone", "ratio"]) and list(df.index) == ["a", "gone", "added"]


def test_runs_without_samples_fall_back_to_median_and_iqr(tmp_path):
    base = times(1e-3)
    df = compare(
        tmp_path,
        [("slow", base, W), ("same", base, W)],
        [("slow", times(2e-3, seed=1), W), ("same", times(1.01e-3, seed=1), W)],
        samples=False,
    )
    assert (df.basis == FALLBACK).all() and df.p_value.isna().all()
    assert df.loc["slow", "verdict"] == "slower" and df.loc["same", "verdict"] == "same"


def test_modeled_is_compared_only_with_modeled(tmp_path):
    df = compare(
        tmp_path,
        [("fpga", [1e-3] * 5, "modeled"), ("model", [1e-3] * 5, "modeled")],
        [("fpga", times(2e-3), W), ("model", [2e-3] * 5, "modeled")],
    )
    assert df.loc["fpga", "verdict"] == "incomparable" and "BASE modeled, NEW measured" in df.loc["fpga", "note"]
    assert pd.isna(df.loc["fpga", "ratio"])
    assert df.loc["model", "verdict"] == "slower" and df.loc["model", "ratio"] == 2.0


def test_failed_rows_are_incomparable(tmp_path):
    make_run(tmp_path / "base", [("a", times(1e-3), W)])
    new = tmp_path / "new"
    write_rows(
        new / "bench.csv",
        [dict(workload="matmul", shape="64x64x64", dtype="float32", backend="a", status="wrong", timing=W)],
        COLUMNS,
    )
    df = compare_runs(load_run(tmp_path / "base"), load_run(new))
    assert df.verdict.tolist() == ["incomparable"] and df.note[0] == "NEW status wrong"


@pytest.fixture
def slower_runs(tmp_path):
    make_run(tmp_path / "base", [("a", times(1e-3), W), ("b", times(1e-3), W)])
    make_run(tmp_path / "new", [("a", times(1.5e-3, seed=1), W), ("b", times(1e-3), W)])
    return str(tmp_path / "base"), str(tmp_path / "new")


def test_fail_on_slower_exits_1(slower_runs, capsys):
    assert cli([*slower_runs]) == 0
    out = capsys.readouterr().out
    assert "verdicts: 1 slower, 1 same" in out and "95% CI" in out
    assert cli([*slower_runs, "--fail-on-slower"]) == 1
    assert cli([slower_runs[0], slower_runs[0], "--fail-on-slower"]) == 0


def test_formats_carry_the_verdict(slower_runs, capsys, tmp_path):
    assert cli([*slower_runs, "--format", "csv"]) == 0
    (tmp_path / "c.csv").write_text(capsys.readouterr().out)
    df = pd.read_csv(tmp_path / "c.csv")
    assert df.verdict.tolist() == ["slower", "same"] and df.ratio[0] > 1.4
    assert cli([*slower_runs, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r["verdict"] for r in rows] == ["slower", "same"] and rows[0]["n_base"] == 20
    assert cli([*slower_runs, "--format", "md"]) == 0
    md = capsys.readouterr().out
    assert "| workload | shape |" in md and "| slower |" in md


@pytest.mark.parametrize(
    "breakage,match",
    [
        ("missing", "no run folder"),
        ("no-csv", "no results file"),
        ("corrupt-csv", "corrupt results file"),
        ("text-time", "row 1, column median_s: 'fast'"),
        ("corrupt-samples", "corrupt samples file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(breakage, match, slower_runs, capsys, tmp_path):
    bad = tmp_path / "bad"
    if breakage != "missing":
        make_run(bad, [("a", times(1e-3), W)])
    if breakage == "no-csv":
        (bad / "bench.csv").unlink()
    elif breakage == "corrupt-csv":
        (bad / "bench.csv").write_text('workload,shape\n"matmul\n')
    elif breakage == "text-time":
        df = pd.read_csv(bad / "bench.csv", dtype=str)
        df.loc[0, "median_s"] = "fast"
        df.to_csv(bad / "bench.csv", index=False)
    elif breakage == "corrupt-samples":
        (bad / "samples.csv").write_text("workload,shape,dtype,backend,rep,seconds,timing\nmatmul,1,f,a,0,x,w\n")
    assert cli([slower_runs[0], str(bad)]) == 2
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args,match",
    [(["--format", "xml"], "unknown --format 'xml'"), (["--threshold", "5"], "--threshold 5.0 must be a fraction")],
)
def test_bad_options_are_one_line_and_exit_2(args, match, slower_runs, capsys):
    assert cli([*slower_runs, *args]) == 2
    assert match in capsys.readouterr().err


def test_two_real_quick_runs_compare(tmp_path):
    """bench.run writes samples.csv beside bench.csv, and python -m bench.compare reads two such runs."""
    from bench.run import cli as run

    for name in ("one", "two"):
        assert (
            run(
                [
                    "--workload",
                    "matmul",
                    "--quick",
                    "--backends",
                    "numpy,null",
                    "--budget",
                    "0.01",
                    "--out",
                    str(tmp_path),
                    "--name",
                    name,
                ]
            )
            == 0
        )
    r = subprocess.run(
        [sys.executable, "-m", "bench.compare", str(tmp_path / "one"), str(tmp_path / "two"), "--format", "json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)["rows"]
    quick = len(get("matmul").preset_cases("quick"))  # rows: every quick matmul preset on numpy and null
    assert len(rows) == 2 * quick and all(r["basis"] == SAMPLES and r["n_base"] >= 5 for r in rows)
    # null's modeled time is the same constant in both runs: compared (modeled with modeled), and the same
    assert {r["verdict"] for r in rows if r["backend"] == "null"} == {"same"}
