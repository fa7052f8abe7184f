"""--out and --name: a bad --out is one line (exit 2), a run never overwrites another unless --replace (then
whole, swapped in at the end), and --replay writes under --out, never into the run it reads."""

import os
import shutil
import sys
from pathlib import Path

import pytest

from bench.run import cli as run
from bench.schedule import cli as schedule
from bench.simulate import cli as simulate

RESULTS = Path(__file__).resolve().parents[1] / "results"
RUN = ["--workload", "matmul", "--quick", "--backends", "numpy", "--shape", "8x8x8"]
SIM = ["--mix", "u250", "--tasks", "mixed:6", "--policy", "dmda", "--from-results", ""]
SCHED = ["--devices", "null", "--tasks", "mixed:2", "--size", "quick"]  # refused before Ray starts


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and "Traceback" not in "\n".join(err)
    return err[-1]


@pytest.mark.parametrize(
    "cli, argv", [(run, RUN), (simulate, SIM), (schedule, SCHED)], ids=["run", "simulate", "schedule"]
)
def test_out_naming_a_file_is_one_line(tmp_path, capsys, cli, argv):
    (tmp_path / "f").write_text("mine\n")
    for out in (tmp_path / "f", tmp_path / "f" / "sub"):
        assert cli(argv + ["--out", str(out)]) == 2
        assert "is a file, not a folder" in _err(capsys)
    assert (tmp_path / "f").read_text() == "mine\n"


def test_a_name_that_is_not_a_plain_folder_name_is_refused(tmp_path, capsys):
    for name in ("..", ".", "../x", "a/b"):
        assert run(RUN + ["--out", str(tmp_path / "o"), "--name", name]) == 2
        assert "may hold only" in _err(capsys)
    assert not tmp_path.joinpath("o").exists() and sorted(tmp_path.iterdir()) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc, a folder nobody can create in")
def test_out_that_cannot_be_created_is_one_line(tmp_path, capsys):
    assert run(RUN + ["--out", "/proc/hetero-test-out"]) == 2
    assert "/proc/hetero-test-out" in _err(capsys)
    if os.geteuid() != 0:  # root may write anywhere: the mode is only a rule for other users
        (tmp_path / "ro").mkdir(mode=0o500)
        assert simulate(SIM + ["--out", str(tmp_path / "ro")]) == 2
        assert "not writable" in _err(capsys)


@pytest.mark.parametrize(
    "cli, argv, name", [(run, RUN, "bench.csv"), (simulate, SIM, "simulate.csv")], ids=["run", "simulate"]
)
def test_a_run_never_overwrites_another_unless_replace(tmp_path, capsys, cli, argv, name):
    argv = argv + ["--out", str(tmp_path), "--name", "x"]
    assert cli(argv) == 0
    first = (tmp_path / "x" / name).read_bytes()
    (tmp_path / "x" / "note.txt").write_text("the earlier run's\n")
    assert cli(argv) == 2
    assert f"{tmp_path / 'x'} exists; pick another --name" in _err(capsys)
    assert (tmp_path / "x" / name).read_bytes() == first and (tmp_path / "x" / "note.txt").exists()
    assert cli(argv + ["--replace"]) == 0
    assert not (tmp_path / "x" / "note.txt").exists() and (tmp_path / "x" / name).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]  # no temporary folder left behind


def test_replay_writes_under_out_and_leaves_the_run_read_alone(tmp_path, capsys):
    src = next(p for p in sorted(RESULTS.glob("schedule-*")) if (p / "trace.json").exists())
    run_dir = tmp_path / "runs" / src.name
    shutil.copytree(src, run_dir, ignore=shutil.ignore_patterns("replay.csv"))
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    assert simulate(["--replay", str(run_dir), "--out", str(tmp_path / "out"), "--name", "r"]) == 0
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before
    assert (tmp_path / "out" / "r" / "replay.csv").exists() and (tmp_path / "out" / "r" / "meta.json").exists()
    assert simulate(["--replay", str(run_dir), "--out", str(tmp_path / "out"), "--name", "r"]) == 2
    assert "exists" in _err(capsys)


def test_a_default_name_taken_in_the_same_second_gets_the_next_free_suffix(tmp_path):
    from hetero.results import RunFolder

    first = RunFolder(tmp_path, None, default="run-fixed").create()
    second = RunFolder(tmp_path, None, default="run-fixed").create()
    third = RunFolder(tmp_path, None, default="run-fixed").create()
    assert [p.name for p in (first, second, third)] == ["run-fixed", "run-fixed.2", "run-fixed.3"]


def test_dirty_means_code_that_differs_not_uncommitted_results(tmp_path):
    """A run's git_commit ends in -dirty when a tracked file outside results/ differs from HEAD; result files an
    earlier run wrote (not yet committed) leave it clean, as does an untracked scratch file."""
    import subprocess

    from hetero.results import _git_commit

    git = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    (tmp_path / "results").mkdir()
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "results" / "run.csv").write_text("a\n1\n")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    (tmp_path / "results" / "run.csv").write_text("a\n2\n")
    (tmp_path / "scratch.txt").write_text("notes\n")
    assert not _git_commit(tmp_path).endswith("-dirty")
    (tmp_path / "code.py").write_text("x = 2\n")
    assert _git_commit(tmp_path).endswith("-dirty")
