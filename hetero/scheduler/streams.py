"""Streams of requests, open loop: each request arrives at its own time whatever the devices are doing, and is one
task (a mixed request) or a small graph (a transformer layer's forward for its tokens, a GAN step). The driver
releases each request's first tasks at its arrival (hetero.scheduler.driver, `arrivals`).

Load: a fraction of what the device mix sustains, which is derived from the perf model: the LP area bound
(hetero.scheduler.bounds) of the whole stream's tasks at the model's predicted times, over the number of requests,
is the least time a request can cost the mix on average; capacity = 1 / that, in requests a second, and
load L arrives at L * capacity. Above 1, no policy keeps up and the queue grows without bound.
"""

from __future__ import annotations

import csv
import math
import time
from collections import Counter
from pathlib import Path

import numpy as np

from hetero.errors import HeteroError, choices
from hetero.scheduler import bulk
from hetero.scheduler import tasks as tasksets
from hetero.scheduler.bounds import area_bound
from hetero.scheduler.policies import make as make_policy
from hetero.scheduler.policies.lp_shares import pool_of, shared_groups
from hetero.scheduler.simulate import simulate

ARRIVALS = ("poisson", "constant", "trace:FILE")
COLUMNS = [
    "taskset",
    "mix",
    "policy",
    "load",
    "rate_per_s",
    "requests",
    "completed",
    "throughput_per_s",
    "p50_s",
    "p95_s",
    "p99_s",
    "mean_latency_s",
    "mean_wait_s",
    "p99_wait_s",
    "slo_s",
    "over_slo",
    "sim_wall_s",
    "timing",
]


class Stream:
    """A stream's tasks, and per request its arrival time and tasks' ids (its first tasks have no deps).
    A stream of one task a request (mixed, models) may come as a tasks.Draw instead: request i is then task i,
    and its Task objects are made when first asked for, which a simulation over arrays (bulk.py) never does."""

    def __init__(self, name: str, tasks, arrival, members=None, consts=None, draw: tasksets.Draw | None = None):
        self.name, self._tasks, self._members, self.draw = name, tasks, members, draw
        # (requests,) seconds from the stream's start, ascending (make() sets them once the rate is known)
        self.arrival = np.asarray(arrival if arrival is not None else [], dtype=float)
        self.consts = consts or {}  # the tasks' constant inputs (TaskSet.consts), to run them
        self._taskset: tasksets.TaskSet | None = None  # taskset()'s, made once

    @property
    def requests(self) -> int:
        return len(self.draw.kind) if self.draw is not None else len(self._members)

    @property
    def members(self) -> list:
        """request -> [task ids]"""
        if self._members is None:
            self._members = [[i] for i in range(len(self.draw.kind))]
        return self._members

    @property
    def tasks(self) -> list:
        if self._tasks is None:
            self._tasks = [self.draw.task(i, j) for i, j in enumerate(self.draw.kind.tolist())]
        return self._tasks

    def taskset(self) -> tasksets.TaskSet:
        """The stream's tasks as a TaskSet the runtime runs (hetero.scheduler.runtime.execute); one object, so
        that every policy's run reads the constant inputs the first put into Ray's object store (runtime's
        _const_refs), rather than each putting them again just before its first request."""
        if self._taskset is None:
            self._taskset = tasksets.TaskSet(self.name, self.tasks, self.consts, independent=False)
        return self._taskset

    def release(self) -> None:
        """Let the runtime's copies of the stream's constant inputs go (Ray frees them once no ref is left)."""
        if self._taskset is not None:
            self._taskset._const_refs = None

    def arrivals(self) -> list:
        """[(time, [tasks with no deps])], the driver's `arrivals`."""
        by_id = {t.id: t for t in self.tasks}
        return [(float(a), [by_id[i] for i in ids if not by_id[i].deps]) for a, ids in zip(self.arrival, self.members)]


def requests(spec: str, n: int, seed: int = 0, size: str = "full", inputs: bool = False) -> tuple:
    """(task set, request -> task ids) for `n` requests of a task set: mixed or models (one task each), transformer (one
    layer's five tasks each) or gan (one generator and discriminator step, six tasks each)."""
    name = spec.partition(":")[0]
    if name not in tasksets.SETS:
        raise choices("task set", name, list(tasksets.SETS))
    if name in ("mixed", "models"):
        ts = tasksets.mixed(n, seed=seed, size=size, inputs=inputs, features=name == "models", per_kind=True)
    elif name == "transformer":
        ts = tasksets.transformer(layers=1, batches=n, seed=seed, size=size, inputs=inputs)
    else:
        ts = tasksets.gan(batches=n, seed=seed, size=size, inputs=inputs)
    root: dict = {}
    for t in ts.tasks:  # every task set's graph is a chain per request: a task belongs to its parent's
        root[t.id] = root[t.deps[0]] if t.deps else t.id
    members: dict = {}
    for t in ts.tasks:
        members.setdefault(root[t.id], []).append(t.id)
    return ts, list(members.values())


def arrival_times(kind: str, n: int, rate: float, seed: int = 0) -> np.ndarray:
    """(n,) arrival times at `rate` a second: poisson (exponential gaps, seeded) or constant (evenly spaced)."""
    if not (rate > 0 and math.isfinite(rate)):
        raise HeteroError(f"arrival rate {rate} must be a positive number")
    if kind == "poisson":
        return np.cumsum(np.random.default_rng(seed).exponential(1.0 / rate, n))
    if kind == "constant":
        return np.arange(n) / rate
    raise choices("--arrivals", kind, list(ARRIVALS))


def read_trace(path) -> list[tuple[float, str]]:
    """A CSV of arrival time (seconds) and request kind (a task set name) per line, header `time,kind`."""
    try:
        with open(path, newline="") as f:
            rows = [(float(r["time"]), r["kind"]) for r in csv.DictReader(f)]
    except FileNotFoundError:
        raise HeteroError(f"--arrivals trace:{path}: no such file") from None
    except (KeyError, ValueError, TypeError) as exc:
        raise HeteroError(f"--arrivals trace:{path}: needs columns time,kind with numeric times ({exc})") from None
    if not rows:
        raise HeteroError(f"--arrivals trace:{path}: no requests in it")
    return sorted(rows)


def capacity(stream: Stream, devices, model) -> float:
    """Requests a second the mix sustains at the model's predictions (each task's plus the device's per-call
    overhead): requests / the LP area bound of all their tasks, over pools of identical devices (so that
    thousands of devices cost no more than a few kinds)."""
    kinds = _counts(stream)
    pools: dict = {}
    for d in devices:
        pools.setdefault(pool_of(d), []).append(d)
    times = [(len(m), {k: _time(model, m[0], k) for k in kinds}) for m in pools.values()]
    bound = area_bound(kinds, times, shared_groups(devices, list(pools)))
    if not (bound > 0 and math.isfinite(bound)):
        raise HeteroError(
            "the perf model predicts no time for some task on every device: calibrate first "
            "(python -m bench.schedule calibrate) or pick devices that run the set"
        )
    return stream.requests / bound


def _counts(stream: Stream) -> Counter:
    """case -> tasks of it in the stream, in the order the cases first come."""
    if stream.draw is None:
        return Counter(t.case for t in stream.tasks)
    kinds, first, count = np.unique(stream.draw.kind, return_index=True, return_counts=True)
    out: Counter = Counter()
    for i in np.argsort(first, kind="stable"):
        out[stream.draw.cases[kinds[i]]] += int(count[i])
    return out


def _time(model, d, case) -> float:
    """What a task holds the device for: its prediction plus the per-call overhead (inf where it cannot run)."""
    p = model.predict(d.backend, d.device, case) if d.supports is None or case.workload in d.supports else None
    return p + d.overhead if p is not None else math.inf


def make(
    spec: str,
    n: int,
    devices,
    model,
    load: float,
    arrivals: str = "poisson",
    seed: int = 0,
    size: str = "full",
    inputs: bool = False,
    before=None,
    capacity_per_s: float | None = None,
) -> tuple[Stream, float]:
    """A stream of `n` requests of task set `spec` at `load` times the mix's capacity; (stream, rate a second).
    arrivals 'trace:FILE' takes times from the file (its kinds must be `spec`'s; load is ignored).
    before(task set): called before the capacity is derived (the runtime calibrates the stream's kinds there).
    capacity_per_s: the mix's capacity, where already derived (a sweep's loads must be fractions of one
    capacity: the perf model learns during the runs of each load)."""
    name = spec.partition(":")[0]
    trace = arrivals.startswith("trace:")
    times = np.array([t for t, _ in read_trace(arrivals[6:])[:n]]) if trace else None
    n = len(times) if trace else n
    if name in ("mixed", "models") and not inputs and before is None:  # one task a request: no Task objects yet
        dr = tasksets.draw(n, seed, size, features=name == "models")
        st = Stream(f"{name}:{n}", None, times, draw=dr)
    else:
        ts, members = requests(spec, n, seed, size, inputs)
        if before is not None:
            before(ts)
        st = Stream(f"{name}:{n}", ts.tasks, times, members, ts.consts)
    if trace:
        return st, n / max(times[-1], 1e-12)
    rate = load * (capacity_per_s or capacity(st, devices, model))
    st.arrival = arrival_times(arrivals, n, rate, seed)
    return st, rate


def latency(stream: Stream, start, end, slo: float | None = None) -> dict:
    """Per-request statistics of a run of the stream: latency = the request's last task's end - its arrival;
    wait = its first task's start - its arrival. start, end: task id -> seconds on the run's clock, or (requests,)
    arrays of each request's first start and last end (nan: not completed; a simulation over arrays gives these)."""
    if isinstance(end, dict):
        latest = max(end.values(), default=0.0)
        first, last = np.full(stream.requests, np.nan), np.full(stream.requests, np.nan)
        for r, ids in enumerate(stream.members):
            if all(i in end for i in ids):
                first[r], last[r] = min(start[i] for i in ids), max(end[i] for i in ids)
    else:
        first, last = np.asarray(start, dtype=float), np.asarray(end, dtype=float)
        latest = float(np.nanmax(last)) if np.isfinite(last).any() else 0.0
    done = ~np.isnan(last)
    lat, wait = last[done] - stream.arrival[done], first[done] - stream.arrival[done]
    span = latest - float(stream.arrival[0]) if len(stream.arrival) else 0.0
    return dict(
        requests=stream.requests,
        completed=len(lat),
        throughput_per_s=len(lat) / span if span > 0 else None,
        p50_s=_q(lat, 50),
        p95_s=_q(lat, 95),
        p99_s=_q(lat, 99),
        mean_latency_s=_mean(lat),
        mean_wait_s=_mean(wait),
        p99_wait_s=_q(wait, 99),
        slo_s=slo,
        over_slo=int((lat > slo).sum()) if slo is not None else None,
    )


def _q(x: np.ndarray, p: float):
    return float(np.percentile(x, p)) if len(x) else None


def _mean(x: np.ndarray):
    return float(x.mean()) if len(x) else None


def knee(rows: list[dict], slo: float) -> float | None:
    """The highest load whose p99 latency stays under the SLO (rows of one mix and policy), None if none does."""
    ok = [r["load"] for r in rows if r.get("p99_s") is not None and r["p99_s"] <= slo]
    return max(ok) if ok else None


def write_trace_file(path: Path, stream: Stream) -> None:
    """The stream's arrivals as a trace file (`--arrivals trace:FILE` reads it back)."""
    kind = stream.name.partition(":")[0]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["time", "kind"])
        w.writerows((f"{a:.9f}", kind) for a in stream.arrival)


def sweep(mix: str, loads: list[float], names: list[str], make_stream, run, slo=None, note=print) -> list[dict]:
    """One row per (load, policy), with the latency statistics of COLUMNS: make_stream(load) -> (stream, rate a
    second); run(stream, load, policy name) -> (start, end: task id -> seconds, the row's other fields)."""
    rows = []
    for load in loads:
        st, rate = make_stream(load)
        for name in names:
            start, end, fields = run(st, load, name)
            row = dict(
                taskset=st.name,
                mix=mix,
                policy=name,
                load=load,
                rate_per_s=rate,
                **latency(st, start, end, slo),
                **fields,
            )
            note(f"{st.name} [{mix}] {name} load {load:g}: p50 {row['p50_s']:.4g} s, p99 {row['p99_s']:.4g} s")
            rows.append(row)
        st.release()  # its inputs leave Ray's object store (the runs the caller keeps would pin them)
    return rows


def simulated(
    spec: str,
    n: int,
    mix: str,
    devices,
    model,
    names: list[str],
    loads: list[float],
    arrivals: str = "poisson",
    seed: int = 0,
    slo: float | None = None,
    size: str = "full",
    note=print,
) -> list[dict]:
    """Streams of `n` requests of `spec` simulated on `devices` (every time modeled): sweep's rows."""

    def run(st, load, name):
        wall, policy = time.perf_counter(), make_policy(name, seed)
        got = bulk.run_stream(st, devices, policy, model) if bulk.eligible(st, devices, policy) else None

        if got is not None:  # the same times as simulate's, over arrays
            return got[0], got[1], dict(sim_wall_s=time.perf_counter() - wall, timing="modeled")
        r = simulate(st.tasks, devices, policy, model, arrivals=st.arrivals())
        return r.start, r.end, dict(sim_wall_s=r.wall_s, timing="modeled")

    keep = []
    for name in names:  # a stream's requests hold at least one task each
        limit = make_policy(name, seed).sim_limit((), streaming=True)
        if limit and n > limit:
            note(
                f"{spec}:{n} [{mix}] {name}: skipped; it looks at every ready task for each free device, too slow "
                f"to simulate past {limit} tasks"
            )
        else:
            keep.append(name)
    return sweep(
        mix, loads, keep, lambda load: make(spec, n, devices, model, load, arrivals, seed, size), run, slo, note
    )
