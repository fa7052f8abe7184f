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
import re
import shutil
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


class RunFolder:
    """A run's folder <out>/<name>, checked before anything runs: `out` must be a writable folder (or creatable),
    `name` a plain name, and the folder new unless `replace`. create() makes it (a run's files go straight in, so
    an interrupted run keeps what it finished); with `replace` and an existing folder, create() makes a temporary
    folder beside it and commit() swaps it in at the end, so the earlier run stays whole until the new one is."""

    def __init__(self, out, name: str | None, replace: bool = False, default: str = "%Y%m%d-%H%M%S"):
        if name is not None and not re.fullmatch(r"[A-Za-z0-9._-]+", name) or name in (".", ".."):
            raise HeteroError(f"--name {name!r} may hold only letters, digits, '.', '_' and '-'")
        self.out, self.replace = Path(out), replace
        self.final = self.out / (name or dt.datetime.now().strftime(default))
        self.path: Path | None = None
        _check_out(self.out)
        if self.final.exists() and not replace:
            raise HeteroError(f"{self.final} exists; pick another --name, remove it, or give --replace")

    def create(self) -> Path:
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            if self.replace and self.final.exists():
                self.path = Path(tempfile.mkdtemp(dir=self.out, prefix=f".{self.final.name}.new-"))
            else:
                self.final.mkdir()
                self.path = self.final
        except FileExistsError:          # another run took the name since the check
            raise HeteroError(f"{self.final} exists; pick another --name, remove it, or give --replace") from None
        except OSError as exc:
            raise HeteroError(f"--out {self.out}: cannot create {self.final} ({exc.strerror or exc}); give a "
                              "folder you can write") from None
        return self.path

    def commit(self) -> Path:
        """Swap a replacement into place (the earlier run is removed only once the new one is in)."""
        if self.path is not None and self.path != self.final:
            old = Path(tempfile.mkdtemp(dir=self.out, prefix=f".{self.final.name}.old-"))
            os.replace(self.final, old / "run")
            os.replace(self.path, self.final)
            shutil.rmtree(old, ignore_errors=True)
            self.path = self.final
        return self.final


def _check_out(out: Path) -> None:
    """One line when --out is a file, under a file, or a folder this user cannot write."""
    probe = out
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise HeteroError(f"--out {out}: {probe} is a file, not a folder; give a folder for the results")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise HeteroError(f"--out {out}: {probe} is not writable by this user; give a folder you can write")


def write_rows(path: Path, rows: list[dict], columns: list[str]) -> None:
    buf = io.StringIO()
    pd.DataFrame(rows).reindex(columns=columns).to_csv(buf, index=False)
    atomic_write(path, buf.getvalue())


def read_rows(path: Path, kind: str | None = None) -> pd.DataFrame:
    """A results CSV checked against its file's rules (hetero.validate: bench.csv by default, schedule.csv or
    simulate.csv by name or `kind`), or a one-line HeteroError naming the file, row and column at fault."""
    from hetero.validate import REQUIRED, RULES, check_csv

    path = Path(path)
    kind = kind or (path.name if path.name in RULES else "bench.csv")
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise HeteroError(f"no results file at {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HeteroError(f"unreadable results file {path}: {exc}".splitlines()[0]) from None
    try:
        check_csv(path, text, RULES[kind], REQUIRED[kind])
        return pd.read_csv(io.StringIO(text), **CSV_READ)
    except HeteroError:
        raise
    except Exception as exc:
        raise HeteroError(f"corrupt results file {path}: {type(exc).__name__}: {exc}".splitlines()[0]) from None


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
