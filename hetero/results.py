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
import re
import shlex
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

LIBRARIES = (
    "numpy",
    "numba",
    "scipy",
    "llvmlite",
    "pyopencl",
    "pocl-binary-distribution",
    "ray",
    "pandas",
    "torch",
    "cupy-cuda12x",
    "cupy-cuda13x",
)


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


class RunFolder:
    """A run's folder <out>/<name>, checked before anything runs: `out` must be a writable folder (or creatable),
    `name` a plain name, and the folder new unless `replace`. create() makes it (a run's files go straight in, so
    an interrupted run keeps what it finished); with `replace` and an existing folder, create() makes a temporary
    folder beside it and commit() swaps it in at the end, so the earlier run stays whole until the new one is."""

    def __init__(self, out, name: str | None, replace: bool = False, default: str = "%Y%m%d-%H%M%S"):
        if name is not None and not re.fullmatch(r"[A-Za-z0-9._-]+", name) or name in (".", ".."):
            raise HeteroError(f"--name {name!r} may hold only letters, digits, '.', '_' and '-'")
        self.out, self.replace, self.named = Path(out), replace, name is not None
        self.final = self.out / (name or dt.datetime.now().strftime(default))
        self.path: Path | None = None
        _check_out(self.out)
        if not self.named:  # a default (dated) name taken by a run in the same second: the next free .2, .3, ...
            self._next_free()
        if self.final.exists() and not replace:
            raise HeteroError(f"{self.final} exists; pick another --name, remove it, or give --replace")

    def _next_free(self) -> None:
        stem, k = self.final.name.rsplit(".", 1)[0], 2
        while self.final.exists():
            self.final, k = self.out / f"{stem}.{k}", k + 1

    def create(self) -> Path:
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            if self.replace and self.final.exists():
                self.path = Path(tempfile.mkdtemp(dir=self.out, prefix=f".{self.final.name}.new-"))
            else:
                self._mkdir()
        except FileExistsError:  # another run took the name since the check
            raise HeteroError(f"{self.final} exists; pick another --name, remove it, or give --replace") from None
        except OSError as exc:
            raise HeteroError(
                f"--out {self.out}: cannot create {self.final} ({exc.strerror or exc}); give a folder you can write"
            ) from None
        return self.path

    def _mkdir(self) -> None:
        while True:
            try:
                self.final.mkdir()
                break
            except FileExistsError:
                if self.named:
                    raise
                self._next_free()  # a dated default name another run took since the check
        self.path = self.final

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


# samples.csv, long format: one row per timed repetition of a bench.csv row (joined on the first four columns)
SAMPLE_COLUMNS = ["workload", "shape", "dtype", "backend", "rep", "seconds", "timing"]


def write_samples(path: Path, rows: list[dict]) -> None:
    """Every timed repetition's seconds of every row that has them (rows carry them as a 'samples' list)."""
    long = [
        dict(
            workload=r["workload"],
            shape=r["shape"],
            dtype=r["dtype"],
            backend=r["backend"],
            rep=i,
            seconds=s,
            timing=r.get("timing"),
        )
        for r in rows
        for i, s in enumerate(r.get("samples") or ())
    ]
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
        raise HeteroError(
            f"corrupt samples file {path}: row {i + 2}, column seconds: {df.seconds.iloc[i]!r} is not a positive number"
        )
    return df.assign(seconds=bad)


def _git_commit(root: Path | None = None) -> str | None:
    """HEAD of the checkout hetero runs from (or `root`), "-dirty" when a tracked file outside results/ differs
    from it: the code that ran is not the commit's. Result files that earlier runs wrote and nobody has
    committed yet do not change what runs, so they do not count."""
    where = root or Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=where)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ":/", ":(top,exclude)results"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=where,
        ).stdout.strip()
        return (out.stdout.strip() + ("-dirty" if dirty else "")) if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _hetero_version() -> str:
    try:
        return version("hetero")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def metadata(
    devices: dict, argv: list[str] | None = None, typed: list[str] | None = None, plugins: dict | None = None
) -> dict:
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
        "host": {
            "cpu": cpu_name(),
            "physical_cores": physical_cores(),
            "logical_cpus": os.cpu_count(),
            "machine": platform.machine(),
            "os": platform.platform(),
            "python": platform.python_version(),
        },
        "libraries": libs,
        "blas": blas_report(),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", "unset: OpenBLAS picks by CPU"),
        "devices": devices,
    }


def write_metadata(path: Path, meta: dict) -> None:
    atomic_write(path, json.dumps(meta, indent=2, default=str) + "\n")
