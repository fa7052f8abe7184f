"""Result files: one CSV row per (workload, shape, dtype, backend) and a JSON of the run's metadata.

Every write goes to a temporary file in the same folder and is renamed over the target, so an interrupted run
leaves the previous complete file or the new complete file, never half of one.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import os
import platform
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


def _umask() -> int:
    """The process's umask. Linux shows it in /proc (since 4.7); elsewhere it is read by setting and restoring."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            # mkstemp makes the file 0600; the result gets the mode open() would give it, 0666 under the umask.
            os.fchmod(f.fileno(), 0o666 & ~_umask())
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


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=5, cwd=Path(__file__).resolve().parent).stdout.strip()
        return (out.stdout.strip() + ("-dirty" if dirty else "")) if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def metadata(devices: dict, argv: list[str] | None = None) -> dict:
    libs = {}
    for lib in LIBRARIES:
        try:
            libs[lib] = version(lib)
        except PackageNotFoundError:
            pass
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(argv if argv is not None else sys.argv),
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
