"""Every numeric option of the bench commands rejects out-of-range values (negative, zero where it means
nothing, nan, inf) with one line and exit 2, before any work starts."""

import importlib

import pytest

CASES = [
    ("run", ["--budget", "-1"]),
    ("run", ["--budget", "nan"]),
    ("run", ["--budget", "inf"]),
    ("run", ["--threads", "0"]),
    ("run", ["--threads", "100000"]),
    ("run", ["--seed", "-1"]),
    ("schedule", ["--reps", "0"]),
    ("schedule", ["--repeat", "-2"]),
    ("schedule", ["--seed", "-1"]),
    ("simulate", ["--seed", "-1"]),
    ("clock", ["--seconds", "nan"]),
    ("clock", ["--seconds", "0"]),
    ("clock", ["--mib", "-5"]),
    ("clock", ["--threads", "0"]),
    ("plan", ["train", "--params", "7e9", "--tokens", "1e12", "--days", "nan"]),
    ("plan", ["serve", "--params", "7e9", "--requests-per-user", "1", "--words-per-answer", "9", "--users", "0"]),
]
# What each command needs besides the bad option to get past its other checks.
VALID = {
    "run": ["--workload", "matmul", "--backends", "numpy", "--quick"],
    "schedule": ["--devices", "null", "--size", "quick", "--policy", "single", "--from-results", ""],
    "simulate": ["--mix", "cpu", "--tasks", "mixed:4", "--from-results", ""],
    "clock": ["--quick"],
    "plan": [],
}


@pytest.mark.parametrize("command,args", CASES, ids=[f"{c}{' '.join(a[-2:])}" for c, a in CASES])
def test_out_of_range_numbers_are_one_line_and_exit_2(command, args, tmp_path, capsys):
    cli = importlib.import_module(f"bench.{command}").cli
    out = ["--out", str(tmp_path)] if command in ("run", "schedule", "simulate") else []
    try:
        rc = cli(VALID[command] + out + args)
    except SystemExit as exc:  # argparse's error
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and args[-1] in err and args[-2] in err, err
    assert not any(tmp_path.iterdir())  # nothing written
