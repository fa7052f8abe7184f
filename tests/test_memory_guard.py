"""Sizes that cannot fit are refused before anything is allocated or written: one line naming the estimate and
what is available, exit 2; --force tries anyway."""

import os
import resource
import subprocess
import sys
import tracemalloc

import pytest

from hetero import memory
from hetero.scheduler import tasks
from hetero.workloads import WORKLOADS, check, get

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _limited(args, tmp_path):
    """A bench command in a subprocess whose address space is capped, so a run that does allocate fails fast
    instead of taking the machine's memory."""

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))

    return subprocess.run(
        [sys.executable, "-m", *args, "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        preexec_fn=cap,
    )


@pytest.mark.parametrize(
    "args",
    [
        ["bench.run", "--workload", "matmul", "--shape", "100000x100000x100000", "--backends", "numpy"],
        ["bench.simulate", "--tasks", "mixed:100000000", "--mix", "cpu", "--from-results", ""],
        ["bench.simulate", "--mix", "100000000xh100", "--from-results", ""],
    ],
    ids=["run-matmul", "simulate-tasks", "simulate-devices"],
)
def test_too_big_is_refused_with_the_estimate(args, tmp_path):
    r = _limited(args, tmp_path)
    assert r.returncode == 2, r.stderr[-2000:]
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and "estimated" in err and "available" in err and "--force" in err, err
    assert not any(tmp_path.iterdir())  # no orphan meta.json


def test_force_runs_what_the_estimate_refuses(tmp_path, monkeypatch, capsys):
    from bench.run import cli

    monkeypatch.setattr(memory, "available_bytes", lambda: 1024)
    args = ["--workload", "matmul", "--quick", "--backends", "numpy", "--budget", "0", "--out", str(tmp_path)]
    assert cli(args) == 2 and "1 KiB is available" in capsys.readouterr().err
    assert cli(args + ["--force"]) == 0 and list(tmp_path.glob("*/bench.csv"))


@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_case_estimate_covers_inputs_reference_and_check(workload):
    """The estimate is at least what making the inputs, the reference and checking an output allocate."""
    case = get(workload).preset_cases("quick")[0]
    w = get(workload)
    tracemalloc.start()
    inputs = w.make_inputs(case)
    ref = w.reference(case, inputs)
    check(ref.astype("float32"), ref, case.dtype)  # a backend's float32 output, checked
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert memory.case_bytes(case) >= peak


@pytest.mark.parametrize("spec", ["mixed:7", "transformer:3", "gan:5", "mixed", "gan"])
def test_task_count_matches_the_built_set(spec):
    assert tasks.task_count(spec) == len(tasks.make(spec, inputs=False).tasks)
