"""python -m bench.run as a user runs it: every bad input is one line on stderr and exit 2, no traceback."""

import json
import os
import subprocess
import sys

import pytest

from hetero.errors import HeteroError
from hetero.results import read_rows, read_samples

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bench(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "bench.run", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


@pytest.mark.parametrize(
    "args,match",
    [
        (["--workload", "gemm"], "unknown workload 'gemm'; valid: matmul, attention, conv2d, conv_transpose2d"),
        (["--workload", "matmul", "--backends", "cuda"], "unknown backend 'cuda'; valid: numpy"),
        (["--workload", "matmul", "--preset", "huge"], "unknown matmul preset 'huge'"),
        (["--workload", "matmul", "--dtype", "float8"], "unknown dtype 'float8'"),
        (["--workload", "attention", "--shape", "4x12x512"], "malformed --shape '4x12x512' for attention"),
        (["--workload", "all", "--shape", "4x4x4"], "--shape needs exactly one --workload"),
        (["--workload", "matmul", "--shape", "0x4x4"], "M=0 must be >= 1"),
        (["--workload", "matmul", "--threads", "0", "--quick"], "argument --threads: '0' is not an integer from 1 to"),
        (["--workload", "matmul", "--name", "../x", "--quick"], "--name '../x' may hold only"),
        (["--budget", "abc"], "argument --budget: 'abc' is not a finite number >= 0"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, match, tmp_path):
    r = bench(*args, "--out", str(tmp_path))
    assert r.returncode == 2, r.stderr
    assert match in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not list(tmp_path.rglob("*.csv"))  # nothing half-written


def test_quick_run_writes_a_pandas_loadable_file_and_prints_a_table(tmp_path):
    r = bench("--workload", "matmul", "--quick", "--backends", "numpy,null", "--out", str(tmp_path), "--name", "t")
    assert r.returncode == 0, r.stderr
    assert "matmul (float32); speedup vs numpy" in r.stdout and "MODELED" in r.stdout
    df = read_rows(tmp_path / "t" / "bench.csv")
    assert set(df.backend) == {"numpy", "null"} and (df.status == "ok").all() and df.correct.all()
    assert {
        "workload",
        "shape",
        "dtype",
        "backend",
        "device",
        "median_s",
        "iqr_s",
        "reps",
        "gflops",
        "pct_peak",
        "baseline",
        "speedup",
        "correct",
        "max_abs_err",
        "timing",
    } <= set(df.columns)
    assert set(df[df.backend == "null"].timing) == {"modeled"}
    # % of the STREAM triad measured in the run: for rows in host memory (numpy), not for the null device
    host, null = df[df.backend == "numpy"], df[df.backend == "null"]
    assert (host.stream_gbps > 0).all() and (host.pct_stream > 0).all() and null.pct_stream.isna().all()
    assert (host.pct_stream - 100 * host.bytes / host.median_s / 1e9 / host.stream_gbps).abs().max() < 1e-6
    assert "% STREAM" in r.stdout
    meta = (tmp_path / "t" / "meta.json").read_text()
    assert '"complete": true' in meta and '"libraries"' in meta and '"git_commit"' in meta
    meta = json.loads(meta)
    assert meta["hetero_version"] and meta["plugins"] == {}
    assert meta["command_as_typed"].endswith(
        f"-m bench.run --workload matmul --quick --backends numpy,null --out {tmp_path} --name t"
    )
    samples = read_samples(tmp_path / "t" / "samples.csv")  # every timed repetition, at least 5 a row
    per_row = samples.groupby(["workload", "shape", "dtype", "backend"]).seconds.count()
    assert len(per_row) == len(df) and (per_row >= 5).all() and (df.reps >= 5).all()
    reps = df.set_index(["workload", "shape", "dtype", "backend"]).reps
    assert per_row.sort_index().tolist() == reps.sort_index().tolist()
    assert not list(tmp_path.rglob("*.tmp"))


def test_unavailable_backend_is_a_note_unless_strict(tmp_path, monkeypatch):
    env = {"PYTHONPATH": str(tmp_path) + os.pathsep + ROOT}
    (tmp_path / "sitecustomize.py").write_text(
        "from hetero.backends.null import NullBackend\n"
        "NullBackend._unavailable = classmethod(lambda cls: 'unplugged for the test')\n"
    )
    r = bench("--workload", "matmul", "--quick", "--backends", "numpy,null", "--out", str(tmp_path), env=env)
    assert r.returncode == 0 and "backend 'null' unavailable (unplugged for the test)" in r.stderr
    r = bench(
        "--workload", "matmul", "--quick", "--backends", "numpy,null", "--strict", "--out", str(tmp_path), env=env
    )
    assert r.returncode == 2 and r.stderr.strip().endswith("backend 'null' unavailable: unplugged for the test")


def test_strict_holds_only_for_the_backends_named(monkeypatch):
    """Without --backends every available backend runs and an unavailable one (no GPU here) is skipped, --strict
    or not; --strict makes an unavailable backend an error only where the command line named it."""
    from bench.run import pick_backends
    from hetero.backends import registry
    from hetero.backends.null import NullBackend
    from hetero.errors import HeteroError

    monkeypatch.setattr(registry, "names", lambda include_hidden=False: ["numpy", "null"])
    monkeypatch.setattr(NullBackend, "_unavailable", classmethod(lambda cls: "unplugged for the test"))
    assert [b.name for b in pick_backends(None, "numpy", True, None)] == ["numpy"]
    with pytest.raises(HeteroError, match="backend 'null' unavailable: unplugged for the test"):
        pick_backends("numpy,null", "numpy", True, None)


def test_wrong_results_are_reported_as_failed_not_timed(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(
        "import numpy as np\nfrom hetero.backends import null\n"
        "orig = null.NullBackend._prepare\n"
        "def bad(self, case, inputs):\n    k = orig(self, case, inputs)\n    k.out = k.out + 1\n    return k\n"
        "null.NullBackend._prepare = bad\n"
    )
    r = bench(
        "--workload",
        "matmul",
        "--quick",
        "--backends",
        "numpy,null",
        "--out",
        str(tmp_path),
        "--name",
        "w",
        env={"PYTHONPATH": str(tmp_path) + os.pathsep + ROOT},
    )
    assert r.returncode == 1
    df = read_rows(tmp_path / "w" / "bench.csv")
    bad = df[df.backend == "null"]
    assert (bad.status == "wrong").all() and bad.median_s.isna().all() and bad.speedup.isna().all()


def test_list_shows_backends_with_reasons_and_presets():
    r = bench("--list")
    assert r.returncode == 0
    assert "numpy" in r.stdout and "bert-base-512" in r.stdout and "dcgan-d2" in r.stdout
    takes = {ln.split()[0]: ln for ln in r.stdout.splitlines() if ln.startswith("  ") and "matmul:" in ln}
    assert "matmul: float32,int8;" in takes["numba"] and "conv_transpose2d: float32" in takes["numba"]


def test_support_names_the_features_a_backend_refuses(monkeypatch):
    from bench.run import support
    from hetero.backends.registry import backend_class

    monkeypatch.setattr(backend_class("numba"), "features", {"matmul": frozenset(), "conv2d": frozenset({"rect"})})
    line = support("numba")
    assert "matmul: float32,int8 (not batch)" in line and "conv2d: float32,int8 (not groups)" in line
    assert "attention: float32 (not cross,gqa,mask,value-dim)" in line


def test_a_sigterm_ends_a_program_as_an_interruption():
    """A killed job (SIGTERM) runs the program's `finally` blocks and exits 130 with one line, like Ctrl-C."""
    script = (
        "import os, signal, sys, time\n"
        "from bench.cli import main\n"
        "def run(argv):\n"
        "    try:\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        time.sleep(10)\n"
        "    finally:\n"
        "        print('cleaned up')\n"
        "sys.exit(main(run, [], prog='demo'))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 130 and "cleaned up" in out.stdout
    assert out.stderr.strip() == "demo: interrupted; files already written are complete"


def test_one_run_takes_presets_of_several_workloads():
    """--preset names from different workloads: each workload runs its own (the speed targets' one run)."""
    from bench.run import parser, pick_cases

    args = parser().parse_args(["--workload", "attention,conv2d", "--preset", "llama3-8b-decode,resnext50-32x4d"])
    assert [(c.workload, c.preset) for c in pick_cases(args)] == [
        ("attention", "llama3-8b-decode"),
        ("conv2d", "resnext50-32x4d"),
    ]
    args = parser().parse_args(["--workload", "attention,conv2d", "--preset", "llama3-8b-decode,nonesuch"])
    with pytest.raises(HeteroError, match="nonesuch"):
        pick_cases(args)
