"""Performance model: how long a task kind takes on a device, learnt from measurements (after StarPU's).

Keyed by (backend, device, workload, footprint) where the footprint is the case's shape and dtype. Each key keeps
a history (count, mean, M2 for the variance) and a recent mean (exponentially weighted, newest sample 30%), which
is what predictions use: a CPU device runs slower while its neighbour core is busy too (shared L3 and memory
bandwidth; per task kind of mixed:40 in the Zen 5 schedule run of commit cb9ac89, up to 1.75x, median 1.10-1.16x), so a
model that averaged all history would mispredict whichever condition it saw less. The first sample of a key is
dropped (compilation, cold caches), and once a key has >= 3 samples a sample more than 3x above or below the recent
mean is rejected as a glitch. For sizes never seen, a fit
per (backend, device, workload, dtype) of  time = a * flops^b + c  (least squares on log time, c from a small search)
answers instead.

Per device it also keeps the call overhead: how long a task holds its device beyond its own run (Ray storing the
output, the next queued call arriving), measured between back-to-back tasks: 0.1-4 ms a task on the 2-core VM
(hetero.scheduler.simulate.call_overhead of the Zen 5 runs; per actor design, see actors.CALLS_IN_FLIGHT), not
to be left out of a queue's predicted end when tasks take 5-60 ms.

Per device, too, the error of its predictions in the scheduler's runs: how much longer than predicted its tasks
ran, max(0, took / predicted - 1) per task, as a mean over its tasks (error()). A policy sends a task away from its
fastest device only if the other still finishes first with its prediction stretched by that error
(hetero.scheduler.slips); a device whose error is not yet observed is assumed to have a large one.

Fed by bench.run's result CSVs (results/*/bench.csv: kernel medians, used only for keys with no task samples)
and by every task the scheduler runs. Saved to <cache>/perfmodel.json ($HETERO_PERFMODEL, else in
hetero.cachefile.cache_dir()) or a given path, and reloaded. Every field is checked on load: a corrupt file, a bad
field or one written by another version/schema is reported in one line naming the file and the field, and the
model starts empty; the file is kept as a timestamped .bak when the next save replaces it. A save merges into what
is on disk under a lock (hetero.cachefile.update), so runs saving at once keep each other's entries.
"""

from __future__ import annotations

import functools
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hetero import cachefile
from hetero.cachefile import CacheError, integer, mapping, number, text
from hetero.errors import HeteroError
from hetero.workloads import Case, get

SCHEMA = "hetero.perfmodel"
VERSION = 1
OUTLIER = 3.0  # reject a sample more than 3x above or below the recent mean (a glitch) ...
OUTLIER_AFTER = 3  # ... once the key has this many samples
RECENT = 0.3  # weight of the newest sample in the recent mean that predictions use
ERROR_AFTER = 3  # tasks a device's prediction error is observed over before error() answers
ENTRY_KEY = ("backend", "device", "workload", "footprint")
CALL_KEY = ("backend", "device")
TABLES = (("entries", ENTRY_KEY), ("calls", CALL_KEY), ("errors", CALL_KEY))


def default_path() -> Path:
    """$HETERO_PERFMODEL, else perfmodel.json in the cache folder ($HETERO_CACHE_DIR or the platform's)."""
    env = os.environ.get("HETERO_PERFMODEL")
    return Path(env) if env else cachefile.cache_dir() / "perfmodel.json"


@functools.lru_cache(maxsize=1 << 14)  # the scheduler asks per device per placement; a label costs ~40 µs
def footprint(case: Case) -> str:
    return f"{case.shape}|{case.dtype}"


def case_flops(case: Case) -> float:
    return get(case.workload).flops(case.p)


@dataclass
class History:
    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    flops: float = 0.0
    dropped_first: bool = False
    rejected: int = 0
    source: str = "task"  # task (scheduler/calibrate samples) | kernel (bench.csv medians)
    recent: float = 0.0  # exponentially weighted mean; 0: none yet (files from before it was kept)

    @property
    def estimate(self) -> float:
        """What predictions use: the recent mean (the mean for files from before it was kept)."""
        return self.recent or self.mean

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else 0.0

    def add(self, seconds: float, drop_first: bool = True, reject: bool = True) -> bool:
        """Add one sample; False when it was dropped (first run) or rejected (outlier)."""
        if drop_first and not self.dropped_first:
            self.dropped_first = True
            return False
        ref = self.recent or self.mean
        if reject and self.count >= OUTLIER_AFTER and not ref / OUTLIER <= seconds <= ref * OUTLIER:
            self.rejected += 1
            return False
        self.recent = seconds if self.count == 0 or not self.recent else (1 - RECENT) * self.recent + RECENT * seconds
        self.count += 1
        delta = seconds - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (seconds - self.mean)
        return True


def fit_power(flops: np.ndarray, seconds: np.ndarray) -> tuple[float, float, float] | None:
    """(a, b, c) with seconds ~= a * flops^b + c, from >= 2 distinct sizes; log-space least squares for a, b."""
    if len(set(flops.tolist())) < 2:
        return None
    best = None
    for c in np.linspace(0.0, 0.9 * seconds.min(), 10):
        x, y = np.log(flops), np.log(seconds - c)
        b, log_a = np.polyfit(x, y, 1)
        resid = float(np.sum((np.log(np.exp(log_a) * flops**b + c) - np.log(seconds)) ** 2))
        if best is None or resid < best[0]:
            best = (resid, float(np.exp(log_a)), float(b), float(c))
    return best[1:]


class PerfModel:
    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else default_path()
        self.entries: dict[tuple[str, str, str, str], History] = {}
        self.calls: dict[tuple[str, str], History] = {}  # (backend, device) -> per-task call overhead
        self.errors: dict[tuple[str, str], History] = {}  # (backend, device) -> max(1, took / predicted)
        self._fits: dict = {}
        self._changed: set = set()  # (table, key) learnt here since load: ours win over the file's
        self.warn = print

    # -- learning ------------------------------------------------------------------------------------
    def add(self, backend: str, device: str, case: Case, seconds: float, source: str = "task") -> bool:
        key = (backend, device, case.workload, footprint(case))
        h = self.entries.get(key)
        if h is None or (h.source == "kernel" and source == "task"):  # task samples replace kernel medians
            h = self.entries[key] = History(flops=case_flops(case), source=source)
        self._fits.pop((backend, device, case.workload, case.dtype), None)
        self._changed.add(("entries", key))
        return h.add(seconds, drop_first=(source == "task"))

    def add_call(self, backend: str, device: str, seconds: float) -> None:
        """One gap between back-to-back tasks on a device. Every gap counts, long ones too: a queue's end is
        the sum of them, so their mean is what a prediction needs."""
        self.calls.setdefault((backend, device), History(source="task")).add(seconds, drop_first=False, reject=False)
        self._changed.add(("calls", (backend, device)))

    def add_error(self, backend: str, device: str, predicted: float, took: float) -> None:
        """A task predicted to take `predicted` seconds on the device took `took`, alone on its cores."""
        # kept as max(1, took / predicted): History reads a recent mean of 0 as "none yet"
        ratio = max(1.0, took / predicted)
        self.errors.setdefault((backend, device), History(source="task")).add(ratio, drop_first=False, reject=False)
        self._changed.add(("errors", (backend, device)))

    def error(self, backend: str, device: str) -> float | None:
        """How much longer than predicted the device's tasks run, as a fraction: the mean over every task it ran,
        not the recent one (whose newest sample weighs RECENT: two slow tasks would set it); None until
        ERROR_AFTER tasks have shown it. A run's own tasks move it within the run (slips.Slips)."""
        h = self.errors.get((backend, device))
        return h.mean - 1.0 if h is not None and h.count >= ERROR_AFTER else None

    def call_overhead(self, backend: str, device: str) -> float:
        """Seconds a task holds the device beyond its run (recent mean); 0 until measured."""
        h = self.calls.get((backend, device))
        return h.estimate if h is not None and h.count > 0 else 0.0

    def ingest_csv(self, path: Path) -> int:
        """Rows of a bench.run CSV (status ok) as kernel medians, for keys with no task samples. Returns rows used."""
        from hetero.results import read_rows

        df = read_rows(path)  # checked: a bad cell is a one-line error naming its row and column
        used = 0
        for r in df.to_dict("records"):
            if (
                r.get("status") != "ok"
                or not r.get("median_s")
                or (isinstance(r["median_s"], float) and math.isnan(r["median_s"]))
            ):
                continue
            key = (r["backend"], r["device"], r["workload"], f"{r['shape']}|{r.get('dtype', 'float32')}")
            h = self.entries.get(key)
            if h is not None and h.source == "task":
                continue
            if h is None:
                h = self.entries[key] = History(flops=float(r["flops"]), source="kernel")
            seconds = float(r["median_s"])
            emu = r.get("emu_wall_s")
            if r.get("timing") == "modeled" and isinstance(emu, (int, float)) and emu == emu:
                # A live task on an emulated device lasts as long as the emulation, if that is longer
                seconds = max(seconds, float(emu))
            h.add(seconds, drop_first=False)
            self._fits.pop((*key[:3], key[3].rpartition("|")[2]), None)
            self._changed.add(("entries", key))
            used += 1
        return used

    def ingest_results(self, results_dir, warn=print) -> int:
        """Every <results_dir>/*/bench.csv; an unreadable file is reported through `warn` and skipped."""
        used = 0
        for csv in sorted(Path(results_dir).glob("*/bench.csv")):
            try:
                used += self.ingest_csv(csv)
            except HeteroError as exc:  # names the file, and the row and column at fault
                warn(f"note: skipped: {exc}")
            except Exception as exc:
                warn(f"note: skipped {csv}: {type(exc).__name__}: {exc}".splitlines()[0])
        return used

    # -- predicting ----------------------------------------------------------------------------------
    def history(self, backend: str, device: str, case: Case) -> History | None:
        h = self.entries.get((backend, device, case.workload, footprint(case)))
        return h if h is not None and h.count > 0 else None

    def basis(self, backend: str, device: str, case: Case) -> str:
        """What predict() rests on: 'task' (the scheduler's own runs or its calibration), 'kernel' (bench.run's
        medians), 'fit' (the FLOP fit over other sizes: assumed) or 'none' (unmeasured: explored first)."""
        h = self.history(backend, device, case)
        if h is not None:
            return h.source
        return "fit" if self._fit(backend, device, case.workload, case.dtype) is not None else "none"

    def predict(self, backend: str, device: str, case: Case) -> float | None:
        """Seconds for `case` on the device: its recent mean, else the FLOP fit, else None (unmeasured)."""
        h = self.history(backend, device, case)
        if h is not None:
            return h.estimate
        fit = self._fit(backend, device, case.workload, case.dtype)
        if fit is None:
            return None
        a, b, c = fit
        return a * case_flops(case) ** b + c

    def _fit(self, backend: str, device: str, workload: str, dtype: str):
        """The FLOP fit over one dtype's sizes (fp16 and fp32 times do not lie on one curve)."""
        key = (backend, device, workload, dtype)
        if key not in self._fits:
            pts = [
                (h.flops, h.estimate)
                for (bk, dv, wl, fp), h in self.entries.items()
                if (bk, dv, wl, fp.rpartition("|")[2]) == key and h.count > 0 and h.flops > 0 and h.mean > 0
            ]
            self._fits[key] = (
                fit_power(np.array([p[0] for p in pts]), np.array([p[1] for p in pts])) if len(pts) >= 2 else None
            )
        return self._fits[key]

    # -- disk ----------------------------------------------------------------------------------------
    def save(self, path: Path | None = None) -> Path:
        """Write the model, merged under the file's lock with what another run saved there meanwhile: a key
        learnt here since load is ours, any other key the file's (it may hold newer samples)."""
        path = Path(path) if path else self.path

        def merge(current) -> str:
            found = dict(zip((name for name, _ in TABLES), current or ({}, {}, {})))
            out = {"schema": SCHEMA, "version": VERSION}
            for name, names in TABLES:
                mine = getattr(self, name)
                table = {**mine, **{k: h for k, h in found[name].items() if self._theirs(name, k, h)}}
                out[name] = [dict(zip(names, k), **vars(h)) for k, h in sorted(table.items())]
            return json.dumps(out, indent=1) + "\n"

        cachefile.update(path, _parse, merge, self.warn)
        return path

    def _theirs(self, table: str, key, h: History) -> bool:
        """Whether the file's `key` of `table` is kept over ours in a save: one not learnt here since load, or
        another run's task samples where we hold only kernel medians."""
        if (table, key) not in self._changed:
            return True
        return table == "entries" and h.source == "task" and self.entries[key].source == "kernel"

    @classmethod
    def load(cls, path: Path | None = None, warn=print) -> PerfModel:
        """The saved model, or an empty one; a file that fails a check is reported through `warn` in one line
        (file and field) and left alone until the next save keeps it as a .bak."""
        model = cls(path)
        model.warn = warn
        try:
            found = cachefile.read(model.path, _parse)  # no lock: a save renames a whole file into place
        except CacheError as exc:
            warn(f"note: perf model ignored and rebuilt: {exc}")
            found = None
        if found:
            model.entries, model.calls, model.errors = found
        return model


def _parse(path: Path, data) -> tuple[dict, dict, dict]:
    """One {key: History} per table of TABLES from a perf model file's JSON; CacheError on any bad field."""
    mapping(path, "the file", data)
    if data.get("schema") != SCHEMA or data.get("version") != VERSION:
        raise CacheError(
            f"{path}: written by another version (schema {data.get('schema')!r}, version "
            f"{data.get('version')!r}; this hetero reads {SCHEMA!r} version {VERSION})"
        )
    out = []
    for name, names in TABLES:
        rows = data.get(name, [])  # calls, errors: absent in files from before they were kept
        table = {}
        cachefile.listing(path, name, rows)
        for i, e in enumerate(rows):
            where = f"{name}[{i}]"
            mapping(path, where, e)
            key = tuple(text(path, f"{where}.{k}", e.get(k)) for k in names)
            table[key] = _history(path, f"{where} ({' '.join(key)})", e, names)
        out.append(table)
    return tuple(out)


NUMBERS = {"count": integer, "mean": number, "m2": number, "flops": number, "rejected": integer, "recent": number}


def _history(path: Path, where: str, e: dict, key: tuple) -> History:
    extra = sorted(set(e) - set(NUMBERS) - {"dropped_first", "source"} - set(key))
    cachefile.field(path, where, extra, "no unknown fields", not extra)
    h = History(**{k: check(path, f"{where}.{k}", e[k]) for k, check in NUMBERS.items() if k in e})
    if "dropped_first" in e:
        cachefile.field(
            path, f"{where}.dropped_first", e["dropped_first"], "true or false", isinstance(e["dropped_first"], bool)
        )
        h.dropped_first = e["dropped_first"]
    if "source" in e:
        cachefile.field(path, f"{where}.source", e["source"], "'task' or 'kernel'", e["source"] in ("task", "kernel"))
        h.source = e["source"]
    return h
