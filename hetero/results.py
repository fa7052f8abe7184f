"""Result files: one CSV row per (workload, shape, dtype, backend) and a JSON of the run's metadata.

Every write goes to a temporary file in the same folder and is renamed over the target, so an interrupted run
leaves the previous complete file or the new complete file, never half of one.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd

from hetero.blas_env import blas_report
from hetero.devices import cpu_name, physical_cores
from hetero.errors import HeteroError

LIBRARIES = ("numpy", "numba", "scipy", "llvmlite", "pyopencl", "pocl-binary-distribution", "ray", "pandas",
             "torch", "cupy-cuda12x", "cupy-cuda13x")


# Only empty cells are missing values: pandas' defaults would read a backend named "null" as NaN.
CSV_READ = dict(keep_default_na=False, na_values=[""])


def atomic_write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_rows(path: Path, rows: list[dict], columns: list[str]) -> None:
    buf = io.StringIO()
    pd.DataFrame(rows).reindex(columns=columns).to_csv(buf, index=False)
    atomic_write(path, buf.getvalue())


def read_rows(path: Path) -> pd.DataFrame:
    """A results CSV, or a one-line HeteroError saying what is wrong with it."""
    try:
        df = pd.read_csv(path, **CSV_READ)
    except FileNotFoundError:
        raise HeteroError(f"no results file at {path}") from None
    except Exception as exc:
        raise HeteroError(f"corrupt results file {path}: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    missing = {"workload", "shape", "backend", "median_s"} - set(df.columns)
    if missing:
        raise HeteroError(f"corrupt results file {path}: missing column(s) {', '.join(sorted(missing))}")
    return df


# samples.csv, long format: one row per timed repetition of a bench.csv row (joined on the first four columns)
SAMPLE_COLUMNS = ["workload", "shape", "dtype", "backend", "rep", "seconds", "timing"]


def write_samples(path: Path, rows: list[dict]) -> None:
    """Every timed repetition's seconds of every row that has them (rows carry them as a 'samples' list)."""
    long = [dict(workload=r["workload"], shape=r["shape"], dtype=r["dtype"], backend=r["backend"], rep=i,
                 seconds=s, timing=r.get("timing")) for r in rows for i, s in enumerate(r.get("samples") or ())]
    buf = io.StringIO()
    pd.DataFrame(long, columns=SAMPLE_COLUMNS).to_csv(buf, index=False)
    atomic_write(path, buf.getvalue())


def read_samples(path: Path) -> pd.DataFrame | None:
    """samples.csv as written by write_samples; None when the run has none (written before samples were kept)."""
    if not path.exists():
        return None
    try:
        df = pd.read_csv(path, **CSV_READ)
    except Exception as exc:
        raise HeteroError(f"corrupt samples file {path}: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    missing = set(SAMPLE_COLUMNS) - set(df.columns)
    if missing:
        raise HeteroError(f"corrupt samples file {path}: missing column(s) {', '.join(sorted(missing))}")
    bad = pd.to_numeric(df.seconds, errors="coerce")
    if (bad.isna() | (bad <= 0)).any():
        i = int((bad.isna() | (bad <= 0)).to_numpy().argmax())
        raise HeteroError(f"corrupt samples file {path}: row {i + 2}, column seconds: {df.seconds.iloc[i]!r} is "
                          "not a positive number")
    return df.assign(seconds=bad)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=5, cwd=Path(__file__).resolve().parent).stdout.strip()
        return (out.stdout.strip() + ("-dirty" if dirty else "")) if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _hetero_version() -> str:
    try:
        return version("hetero")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def metadata(devices: dict, argv: list[str] | None = None, typed: list[str] | None = None,
             plugins: dict | None = None) -> dict:
    """The run's context. `command` is sys.argv joined (argv when given); `command_as_typed` is the command line
    as the user typed it, quoted for a shell (typed when given, else the interpreter's own argv)."""
    libs = {}
    for lib in LIBRARIES:
        with contextlib.suppress(PackageNotFoundError):
            libs[lib] = version(lib)
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(argv if argv is not None else sys.argv),
        "command_as_typed": shlex.join(typed if typed is not None else getattr(sys, "orig_argv", sys.argv)),
        "hetero_version": _hetero_version(),
        "plugins": plugins or {},
        "git_commit": _git_commit(),
        "host": {"cpu": cpu_name(), "physical_cores": physical_cores(), "logical_cpus": os.cpu_count(),
                 "machine": platform.machine(), "os": platform.platform(), "python": platform.python_version()},
        "libraries": libs,
        "blas": blas_report(),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", "unset: OpenBLAS picks by CPU"),
        "devices": devices,
    }


def write_metadata(path: Path, meta: dict) -> None:
    atomic_write(path, json.dumps(meta, indent=2, default=str) + "\n")
