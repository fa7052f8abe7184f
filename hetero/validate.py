"""What a result file may hold: per file, each column's type and range, and the fields of meta.json that are read.

A file that breaks a rule is refused with one line naming the file, the row (1 = the first row under the header)
and the column, never read into a table whose figures are then wrong or raise later. The rules are physical ones
(a time is > 0, a count an integer >= 0), not guesses at plausible values; a column a file does not have is not
checked, and a column no rule names is read as it is (files from newer or older versions).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

from hetero.errors import HeteroError

INF = math.inf


@dataclass(frozen=True)
class Col:
    kind: str = "number"  # number | integer | bool | text
    lo: float = 0.0  # range [lo, hi]; lo excluded when above_lo
    hi: float = INF
    above_lo: bool = False
    required: bool = False  # a cell that may not be empty
    values: tuple = ()  # text: the values allowed (empty: any)
    finite: bool = True  # number: inf refused (errors of a wrong result may be inf)

    def problem(self, cell: str) -> str | None:
        """None when `cell` (the CSV text; '' = empty) obeys the rule, else what was expected."""
        if cell == "":
            return "a value (the cell is empty)" if self.required else None
        if self.kind == "text":
            return None if not self.values or cell in self.values else f"one of {', '.join(self.values)}"
        if self.kind == "bool":
            return None if cell in ("True", "False", "true", "false", "1", "0", "1.0", "0.0") else "True or False"
        try:
            v = float(cell)
        except ValueError:
            v = math.nan
        whole = self.kind == "integer"
        ok = (
            not math.isnan(v)
            and (math.isfinite(v) or not self.finite)
            and (not whole or v.is_integer())
            and (v > self.lo if self.above_lo else v >= self.lo)
            and v <= self.hi
        )
        if ok:
            return None
        rng = f"{'>' if self.above_lo else '>='} {self.lo:g}" + (f" and <= {self.hi:g}" if self.hi < INF else "")
        return f"{'an integer' if whole else 'a finite number' if self.finite else 'a number'} {rng}"


TEXT, REQ_TEXT = Col("text"), Col("text", required=True)
SECONDS, POS_SECONDS = Col(), Col(above_lo=True)
POSITIVE, COUNT = Col(above_lo=True), Col("integer")

BENCH = {
    "workload": REQ_TEXT,
    "shape": REQ_TEXT,
    "backend": REQ_TEXT,
    "preset": TEXT,
    "dtype": TEXT,
    "device": TEXT,
    "peer": Col("bool"),
    "status": Col("text", values=("ok", "wrong", "error", "skipped")),
    "correct": Col("bool"),
    "max_abs_err": Col(finite=False),
    "max_rel_err": Col(finite=False),
    "quant": Col("text", values=("channel", "tensor")),
    "quant_err": Col(),
    "quant_err_tensor": Col(),
    "median_s": POS_SECONDS,
    "iqr_s": SECONDS,
    "reps": Col("integer", lo=1),
    "noisy": Col("bool"),
    "gflops": Col(),
    "gbps": Col(),
    # % of the device's stated peak; past 1000% it is no measurement (and planning refuses past 100%)
    "pct_peak": Col(hi=1000.0),
    "pct_stream": Col(hi=1000.0),
    "baseline": TEXT,
    "speedup": POSITIVE,
    "best_peer": TEXT,
    "vs_best_peer": POSITIVE,
    "timing": TEXT,
    "compile_s": SECONDS,
    "first_call_s": SECONDS,
    "transfer_s": SECONDS,
    "emu_wall_s": SECONDS,
    "energy_j": Col(),
    "gflops_per_j": Col(),
    "flops": Col(),
    "bytes": Col(),
    "peak_gflops": POSITIVE,
    "mem_gbps": POSITIVE,
    "stream_gbps": POSITIVE,
    "peak_source": TEXT,
    "threads": Col("integer", lo=1),
    "error": TEXT,
}
SCHEDULE = {
    "taskset": REQ_TEXT,
    "policy": REQ_TEXT,
    "mix": TEXT,
    "devices": TEXT,
    "tasks": Col("integer", lo=1),
    "makespan_s": Col(above_lo=True, required=True),
    "tasks_per_s": Col(),
    "gflops": Col(),
    "speedup_vs_single": POSITIVE,
    "speedup_vs_round_robin": POSITIVE,
    "lp_bound_s": SECONDS,
    "lp_bound_own_cores_s": SECONDS,
    "critical_path_s": SECONDS,
    "bound_s": SECONDS,
    "gap": POSITIVE,
    "overhead_ms_per_task": Col(),
    "overhead_cpu_ms_per_task": Col(),
    "submit_ms_per_task": Col(),
    "utilization": TEXT,
    "task_counts": TEXT,
    "retries": COUNT,
    "checked": COUNT,
    "wrong": COUNT,
    "shared_cores": TEXT,
    "lost_devices": TEXT,
    "alive_start": TEXT,
    "alive_end": TEXT,
    "prediction_basis": TEXT,
    "error_basis": TEXT,
    "repeats": Col("integer", lo=1),
    "makespan_min_s": POS_SECONDS,
    "makespan_max_s": POS_SECONDS,
    "gap_median": POSITIVE,
    "gap_min": POSITIVE,
    "gap_max": POSITIVE,
    "model_knew": TEXT,
    "placed_by": TEXT,
}
SIMULATE = {
    "mix": REQ_TEXT,
    "taskset": REQ_TEXT,
    "policy": REQ_TEXT,
    "devices": Col("integer", lo=1),
    "tasks": Col("integer", lo=1),
    "makespan_s": Col(above_lo=True, required=True),
    "tasks_per_s": Col(),
    "gflops": Col(),
    "speedup_vs_round_robin": POSITIVE,
    "bound_s": SECONDS,
    "gap": POSITIVE,
    "sim_wall_s": SECONDS,
    "utilization": TEXT,
    "task_counts": TEXT,
    "timing": TEXT,
    "profiles": TEXT,
}
STREAM = {
    "taskset": REQ_TEXT,
    "mix": TEXT,
    "policy": REQ_TEXT,
    "load": Col(above_lo=True, required=True),
    "rate_per_s": POSITIVE,
    "requests": COUNT,
    "completed": COUNT,
    "throughput_per_s": Col(),
    "p50_s": SECONDS,
    "p95_s": SECONDS,
    "p99_s": SECONDS,
    "mean_latency_s": SECONDS,
    "mean_wait_s": SECONDS,
    "p99_wait_s": SECONDS,
    "slo_s": POSITIVE,
    "over_slo": COUNT,
    "sim_wall_s": SECONDS,
    "timing": TEXT,
}
RULES = {"bench.csv": BENCH, "schedule.csv": SCHEDULE, "simulate.csv": SIMULATE, "stream.csv": STREAM}
REQUIRED = {
    "bench.csv": ("workload", "shape", "backend", "median_s"),
    "schedule.csv": ("taskset", "policy", "makespan_s"),
    "simulate.csv": ("mix", "taskset", "policy", "makespan_s"),
    "stream.csv": ("taskset", "policy", "load", "p99_s"),
}


def check_csv(path: Path, text: str, rules: dict[str, Col], required=()) -> None:
    """HeteroError (one line: file, row, column) at the first cell that breaks `rules`, a row with too few or
    too many cells, or a last row cut short (no end of line)."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise HeteroError(f"corrupt results file {path}: empty (no header)")
    header = rows[0]
    missing = [c for c in required if c not in header]
    if missing:
        raise HeteroError(f"corrupt results file {path}: missing column(s) {', '.join(sorted(missing))}")
    if len(rows) > 1 and not text.endswith("\n"):
        raise HeteroError(
            f"corrupt results file {path}: row {len(rows) - 1} is cut short (no end of line): the write was interrupted"
        )
    checks = [(i, name, rules[name]) for i, name in enumerate(header) if name in rules]
    for n, row in enumerate(rows[1:], 1):
        if not row:  # a blank line (pandas skips it too)
            continue
        if len(row) != len(header):
            raise HeteroError(
                f"corrupt results file {path}: row {n} has {len(row)} cells, the header "
                f"{len(header)}" + (" (cut short)" if len(row) < len(header) else "")
            )
        for i, name, col in checks:
            want = col.problem(row[i])
            if want:
                raise HeteroError(f"corrupt results file {path}: row {n}, column {name}: {row[i]!r}; expected {want}")
        if (
            "status" in header
            and "median_s" in header
            and row[header.index("status")] == "ok"
            and row[header.index("median_s")] == ""
        ):
            raise HeteroError(f"corrupt results file {path}: row {n}, column median_s: empty on a row with status ok")


# -- meta.json ---------------------------------------------------------------------------------------------
def _is_num(v, lo=0.0, above=False, finite=True) -> bool:
    return (
        isinstance(v, (int, float))
        and not isinstance(v, bool)
        and not math.isnan(v)
        and (math.isfinite(v) or not finite)
        and (v > lo if above else v >= lo)
    )


META_TOP = {
    "date": str,
    "command": str,
    "git_commit": (str, type(None)),
    "openblas_coretype": str,
    "host": dict,
    "devices": dict,
    "blas": list,
    "libraries": dict,
    "complete": bool,
    "model": str,
    "compile_s": dict,
}
# per device: field -> (check, what it should be)
META_DEVICE = {
    **{f: (lambda v: isinstance(v, str), "a string") for f in ("kind", "name", "backend", "peak_source")},
    "peak_gflops": (lambda v: v is None or _is_num(v, above=True), "a number > 0"),
    "mem_gbps": (lambda v: v is None or _is_num(v, above=True), "a number > 0"),
    "supports": (lambda v: isinstance(v, list) and all(isinstance(s, str) for s in v), "a list of names"),
    "cpus": (
        lambda v: v is None or isinstance(v, list) and all(isinstance(c, int) and c >= 0 for c in v),
        "a list of core numbers",
    ),
    "transfer_latency_s": (lambda v: _is_num(v), "a finite number >= 0"),
    "transfer_bandwidth_Bps": (lambda v: _is_num(v, above=True, finite=False), "a number > 0"),
}


def check_meta(path: Path, meta) -> dict:
    """`meta` (a run's meta.json, parsed) if every field hetero reads has its type; else a one-line HeteroError."""

    def bad(where, value, want):
        raise HeteroError(f"corrupt run metadata {path}: {where} is {value!r}, expected {want}")

    if not isinstance(meta, dict):
        bad("the file", type(meta).__name__, "a JSON object")
    for key, kind in META_TOP.items():
        if key in meta and not isinstance(meta[key], kind):
            bad(key, meta[key], f"a JSON {getattr(kind, '__name__', 'string or null')}")
    host = meta.get("host", {})
    if not isinstance(host.get("cpu", ""), str):
        bad("host.cpu", host["cpu"], "a string")
    if "physical_cores" in host and not (host["physical_cores"] is None or _is_num(host["physical_cores"], 1)):
        bad("host.physical_cores", host["physical_cores"], "an integer >= 1")
    for name, dev in meta.get("devices", {}).items():
        if not isinstance(dev, dict):
            bad(f"devices.{name}", dev, "a JSON object")
        for field, (ok, want) in META_DEVICE.items():
            if field in dev and not ok(dev[field]):
                bad(f"devices.{name}.{field}", dev[field], want)
    for i, b in enumerate(meta.get("blas", [])):
        if not isinstance(b, dict) or not isinstance(b.get("architecture", ""), (str, type(None))):
            bad(f"blas[{i}]", b, "an object with a string 'architecture'")
    return meta


def read_meta(path: Path) -> dict:
    """A run's meta.json, checked; a one-line HeteroError when it is missing, not JSON, or has a bad field."""
    import json

    try:
        meta = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise HeteroError(f"no run metadata at {path}") from None
    except (OSError, ValueError) as exc:
        raise HeteroError(f"corrupt run metadata {path}: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    return check_meta(Path(path), meta)
