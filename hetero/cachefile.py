"""Cache files (the perf model, the OpenCL tuning choices): where they live, how they are read and updated.

- Where: $HETERO_CACHE_DIR, else the platform's user cache folder (platformdirs: ~/.cache/hetero on Linux).
- Read: JSON checked field by field by the caller's `parse`; any problem is a CacheError naming the file and the
  field, in one line, and the caller carries on without the file.
- Update: read-modify-write under an exclusive lock on a sidecar `<name>.lock` (fcntl.flock), so two runs writing
  at once each merge into what the other wrote instead of one dropping the other's entries. The new file is
  written to a temporary file and renamed over the old one (results.atomic_write).
- A file that cannot be read (truncated, another schema or version, a bad field) is never silently replaced: it
  is kept beside the new one as `<name>.<UTC time>.bak`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hetero.errors import HeteroError


class CacheError(HeteroError):
    """A cache file that cannot be used as it is; the message names the file and the field."""


def cache_dir() -> Path:
    """$HETERO_CACHE_DIR, else the platform's user cache folder for hetero (~/.cache/hetero on Linux)."""
    env = os.environ.get("HETERO_CACHE_DIR")
    if env:
        return Path(env)
    try:
        from platformdirs import user_cache_dir
    except ImportError:  # a dependency, but `import hetero` must not need it
        return Path.home() / ".cache" / "hetero"
    return Path(user_cache_dir("hetero", appauthor=False))


@contextlib.contextmanager
def locked(path: Path):
    """An exclusive lock on `path`'s sidecar lock file for the duration of the block (waits for other holders).
    Where fcntl does not exist (Windows) the block runs unlocked."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def backup(path: Path) -> Path:
    """Rename `path` to `<name>.<UTC time>.bak` beside it (a counter added if that name is taken)."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    bak, n = path.with_name(f"{path.name}.{stamp}.bak"), 1
    while bak.exists():
        bak, n = path.with_name(f"{path.name}.{stamp}-{n}.bak"), n + 1
    os.replace(path, bak)
    return bak


def read(path: Path, parse: Callable[[Path, Any], Any]) -> Any | None:
    """parse(path, the file's JSON), None when there is no file; a CacheError (one line) when it is unusable."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CacheError(f"{path}: unreadable ({exc.strerror or exc})") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CacheError(f"{path}: not valid JSON ({str(exc).splitlines()[0]}), truncated or corrupt") from None
    return parse(path, data)


def update(
    path: Path, parse: Callable[[Path, Any], Any], merge: Callable[[Any | None], str], warn: Callable[[str], None]
) -> None:
    """Under the lock: read the file as it is now (parse), write merge(what was there, or None). An unusable
    file is kept as a .bak and reported through `warn` in one line before it is replaced."""
    from hetero.results import atomic_write

    with locked(path):
        try:
            current = read(path, parse)
        except CacheError as exc:
            current = None
            if path.exists():
                warn(f"note: {exc}; kept as {backup(path)}, rebuilt")
        atomic_write(path, merge(current))


# -- field checks shared by the parsers --------------------------------------------------------------------
def field(path: Path, where: str, value, kind: str, ok: bool) -> None:
    """Raise the one-line CacheError for a field whose value `ok` says is not of `kind`."""
    if not ok:
        raise CacheError(f"{path}: {where} is {value!r}, expected {kind}")


def number(path: Path, where: str, value, minimum: float = 0.0) -> float:
    import math

    field(
        path,
        where,
        value,
        f"a finite number >= {minimum:g}",
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= minimum,
    )
    return float(value)


def integer(path: Path, where: str, value, minimum: int = 0) -> int:
    field(
        path,
        where,
        value,
        f"an integer >= {minimum}",
        isinstance(value, int) and not isinstance(value, bool) and value >= minimum,
    )
    return value


def text(path: Path, where: str, value) -> str:
    field(path, where, value, "a string", isinstance(value, str))
    return value


def mapping(path: Path, where: str, value) -> dict:
    field(path, where, value, "a JSON object", isinstance(value, dict))
    return value


def listing(path: Path, where: str, value) -> list:
    field(path, where, value, "a JSON list", isinstance(value, list))
    return value
