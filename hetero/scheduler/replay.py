"""Replays: a real bench.schedule run simulated again, with the run's own durations, per-call overhead,
completion-notice latency and core sharing (hetero.scheduler.trace), to check that the simulator predicts what
the runtime did. Every simulated makespan is modeled; the real one was measured by wall clock.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from pathlib import Path

import numpy as np

from hetero.errors import HeteroError
from hetero.results import read_rows
from hetero.scheduler import streams
from hetero.scheduler import tasks as tasksets
from hetero.scheduler.device import DeviceState
from hetero.scheduler.perfmodel import RECENT
from hetero.scheduler.policies import make
from hetero.scheduler.simulate import SimResult, simulate
from hetero.scheduler.trace import call_overhead, notify_latency, read_trace, solo_seconds
from hetero.validate import read_meta

COLUMNS = ["run", "taskset", "mix", "policy", "real_makespan_s", "sim_makespan_s", "error_pct", "same_policy", "timing"]
TIMING = (
    "real: measured wall clock; sim: modeled from the run's mean durations, per-task overhead, completion "
    "notice and core sharing"
)
STREAM_TIMING = (
    "real: measured wall clock; sim: modeled from the run's durations (each task's own where it ran on that "
    "device, else its kind's mean), per-task overhead, completion notice and core sharing"
)


class RunTimes:
    """The model of a real run: (device name, case) -> what the run's perf model predicted for that kind on that
    device when its policy planned (`predict`; runs that did not record it: the mean seconds it took there), and
    the mean it would have taken alone on its cores (`actual`, solo_seconds; its mean duration where no two
    devices shared a core)."""

    def __init__(
        self, runs: list[list[dict]], tasks, fallback: RunTimes | None = None, cores: dict | None = None, own=False
    ):
        self.fallback = fallback  # for kinds these runs never put on a device
        case_of = {t.id: t.case for t in tasks}
        acc: dict = {}
        self.took: dict = {}  # own: (device name, task id) -> seconds alone that task took there in the run
        for events in runs:
            for e, alone in zip(events, solo_seconds(events, cores)):
                if own:
                    self.took[(e["device"], e["task"])] = alone
                s = acc.setdefault((e["device"], case_of[e["task"]]), [0.0, 0.0, 0])
                s[0] += e["end"] - e["start"]
                s[1] += alone
                s[2] += 1
        self.mean = {k: total / n for k, (total, _, n) in acc.items()}
        self.alone = {k: total / n for k, (_, total, n) in acc.items()}
        # what the run's perf model predicted for a kind on a device the first time its policy placed one (where
        # recorded): the model the run started from. The replay then learns from each simulated task as the run
        # learnt (add), so a run that began knowing little (bench.schedule --cold) is replayed from that, not
        # from what it knew at its end.
        self.recorded: dict = {}
        for events in runs:
            for e in sorted(events, key=lambda e: e.get("sent", e["start"])):
                for d, s in e.get("predicted", {}).items():
                    self.recorded.setdefault((d, case_of[e["task"]]), s)
        self.mean.update(self.recorded)

    def predict(self, backend: str, device: str, case) -> float | None:
        t = self.mean.get((device, case))
        return t if t is not None or self.fallback is None else self.fallback.predict(backend, device, case)

    def history(self, backend: str, device: str, case):
        """What is known of the kind on the device (None: nothing), as PerfModel.history answers the driver."""
        return self.predict(backend, device, case)

    def add(self, backend: str, device: str, case, seconds: float) -> None:
        """A task of `case` took `seconds` on `device` in the simulation: learnt as the runtime's perf model
        learns each task (History's recent mean), by the driver's rule (driver.learn)."""
        was = self.predict(backend, device, case)
        self.mean[(device, case)] = seconds if was is None else (1 - RECENT) * was + RECENT * seconds

    def actual(self, task, dev: DeviceState) -> float | None:
        """What the task itself took alone on the device in the run (`own` runs, where it ran there), else its
        kind's mean alone in these runs, else in the fallback's, else what the perf model predicted for it (a
        mean of earlier runs), rather than the simulator's last resort, the mean over every device that ran the
        kind: that put fpga-emu's 7.5-s emulations of an attention into opencl's time for it. A task's own time
        keeps the run's spread (a slow spell of the machine, a task slowed by the driver's work on its core),
        which decides a stream's tail latency; a kind's mean would smooth it away."""
        t = self.took.get((dev.device, task.id))
        if t is not None:
            return t
        key = (dev.device, task.case)
        t = self.alone.get(key)
        if t is None and self.fallback is not None:
            t = self.fallback.actual(task, dev)
        return self.recorded.get(key) if t is None else t


def replay(
    tasks,
    states: list[DeviceState],
    policy,
    events: list[dict],
    others: list[list[dict]] = (),
    overhead: dict | None = None,
    notify: dict | None = None,
    cores: dict | None = None,
    arrivals: list | None = None,
    planned: dict | None = None,
    own_times: bool = False,
    errors: dict | None = None,
) -> SimResult:
    """The simulator's version of a real run: the same tasks, devices (DeviceStates whose `device` is the run's
    device name, with its measured transfer costs) and policy, each (device, task kind) taking its mean duration
    over `events` (the run's own: a shared machine runs faster in some runs than others; with `own_times`, each
    task what it took in `events` where it lands on the device it ran on), else over `others`
    (the set's other runs, one event list each), else the mean over the devices that ran it; each task then
    holds its device `overhead` longer (call_overhead of the mix's runs), which the policies also count, as the
    runtime's learnt one. Devices that shared cores (cores, as simulate's) share them again, each kind taking its
    solo_seconds mean alone. arrivals: a stream's, as the run released them. planned: device name -> the call
    overhead the run's policy priced that device with (its perf model's, trace `planned_overhead`), which the
    replayed policy prices it with too where given: a static plan such as HEFT's changes with it. errors: device
    name -> the prediction error the run's guard started from there (trace `planned_error`; runs that did not
    record it: 0)."""
    for d in states:
        d.overhead = (planned or {}).get(d.name, (overhead or {}).get(d.name, d.overhead))
        d.error = (errors or {}).get(d.name, 0.0)
    times = RunTimes([events], tasks, RunTimes(list(others), tasks, cores=cores), cores=cores, own=own_times)
    return simulate(
        tasks,
        states,
        policy,
        times,
        actual=times.actual,
        overhead=overhead,
        notify=notify,
        cores=cores,
        arrivals=arrivals,
    )


def load_run(run: Path) -> tuple[dict, list[dict], dict]:
    """(meta.json, schedule.csv rows, trace runs) of a bench.schedule run folder, each file checked
    (hetero.validate): a one-line HeteroError naming the file and the field at fault."""
    for name in ("meta.json", "schedule.csv"):
        if not (run / name).is_file():
            raise HeteroError(f"--replay {run}: not a bench.schedule run folder ({name} missing)")
    meta, table = read_meta(run / "meta.json"), read_rows(run / "schedule.csv")
    devices = meta.get("devices") or {}
    if not devices or any("supports" not in info for info in devices.values()):
        raise HeteroError(f"corrupt run metadata {run / 'meta.json'}: devices, each with 'supports', expected")
    return meta, table.to_dict("records"), read_trace(run / "trace.json")


def run_states(devices: dict) -> list[DeviceState]:
    """The run's devices as DeviceStates named and keyed by their run names, with their measured transfer costs
    and core sharing."""
    states = [
        DeviceState(
            name,
            info.get("backend", name.split("@")[0]),
            name,
            info.get("transfer_latency_s", 0.0),
            info.get("transfer_bandwidth_Bps", math.inf),
            frozenset(info["supports"]),
        )
        for name, info in devices.items()
    ]
    shared = shared_cores(devices)
    for s in states:
        s.core_group = shared.get(s.name)
    return states


def replay_run(run: Path) -> list[dict]:
    """Each (task set, mix, policy) row of a bench.schedule run simulated again with the run's own mean durations
    (its other runs' where this one never put a kind on a device): one row each, real against simulated."""
    meta, table, runs = load_run(run)
    argv = " ".join(meta.get("command", "").split()[1:])
    seed = int(m.group(1)) if (m := re.search(r"--seed[ =](\d+)", argv)) else 0
    size = "quick" if re.search(r"--size[ =]quick", argv) else "full"
    states = run_states(meta["devices"])
    rows = []
    for r in table:
        ts = tasksets.make(r["taskset"], seed=seed, size=size, inputs=False)
        mix = r.get("mix") or "-"  # runs before --mixes: every device, mix '-'
        here = [s for s in states if mix == "-" or s.backend in mix.split("+")]
        own = runs.get((r["taskset"], r["policy"], mix), [])
        others = [
            evs
            for (name, pol, m), evs in sorted(runs.items(), key=lambda kv: kv[0][2] != mix)
            if name == r["taskset"] and (pol, m) != (r["policy"], mix)
        ]
        overhead = call_overhead([evs for (_, _, m), evs in runs.items() if m == mix])
        notify = notify_latency(
            [evs for (name, _, m), evs in runs.items() if name == r["taskset"] and m == mix], ts.tasks
        )
        policy = make(r["policy"], seed)
        sim = replay(
            ts.tasks,
            here,
            policy,
            own,
            others,
            overhead,
            notify,
            {s.name: s.core_group for s in here if s.core_group is not None},
            planned=planned_overhead(own),
            errors=planned_error(own),
        )
        rows.append(
            dict(
                run=run.name,
                taskset=r["taskset"],
                mix=mix,
                policy=r["policy"],
                real_makespan_s=r["makespan_s"],
                sim_makespan_s=sim.makespan,
                error_pct=100 * (sim.makespan - r["makespan_s"]) / r["makespan_s"],
                same_policy=same_policy(policy, meta),
                timing=TIMING,
            )
        )
    return rows


def planned_overhead(events: list[dict]) -> dict:
    """device name -> the call overhead the run's policy priced it with, from the run's events (runs that did not
    record it: none)."""
    return {e["device"]: e["planned_overhead"] for e in events if "planned_overhead" in e}


def planned_error(events: list[dict]) -> dict:
    """device name -> the prediction error the run's guard started from there (every device of the run, in each
    event; runs that did not record it: none)."""
    return next((e["planned_error"] for e in events if "planned_error" in e), {})


def same_policy(policy, meta: dict) -> bool:
    """Whether the run was made with the placement rule the simulator runs now (after policy.revised)."""
    if policy.revised is None:
        return True
    try:
        return datetime.fromisoformat(meta["date"]) >= datetime.fromisoformat(policy.revised)
    except (KeyError, TypeError, ValueError):
        return False


def shared_cores(devices: dict) -> dict:
    """device name -> (node, cores) for the run's devices pinned to the cores of another (bench.schedule
    --share-cores gives each such device one core); a multi-node run's names end in @<node>."""
    where = {n: (n.partition("@")[2], tuple(sorted(i.get("cpus") or ()))) for n, i in devices.items()}
    return {n: w for n, w in where.items() if w[1] and sum(v == w for v in where.values()) > 1}


STREAM_COLUMNS = [
    "run",
    "taskset",
    "mix",
    "policy",
    "load",
    "real_p50_s",
    "sim_p50_s",
    "real_p99_s",
    "sim_p99_s",
    "p50_err_pct",
    "p99_err_pct",
    "timing",
]


def arrivals_file(run: Path, name: str, load: float, mix: str = "") -> Path:
    """Where a stream run keeps a stream's arrival times (streams.write_trace_file), per task set, device mix
    (each mix has its own capacity, so its own rate at a load) and load. Runs before mixes were told apart
    kept one file per task set and load: that one where the mix's is missing."""
    stem = f"arrivals-{name.replace(':', '-')}"
    path = run / f"{stem}-{mix}-load{load:g}.csv"
    old = run / f"{stem}-load{load:g}.csv"
    return old if mix and not path.exists() and old.exists() else path if mix else old


def replay_stream_run(run: Path) -> list[dict]:
    """Each (stream, load, mix, policy) row of a bench.schedule stream run simulated again, with the run's own
    arrivals and mean durations: p50 and p99 latency, real against simulated."""
    if not (run / "stream.csv").is_file():
        raise HeteroError(f"--replay {run}: no schedule.csv or stream.csv: not a bench.schedule run folder")
    meta, table = read_meta(run / "meta.json"), read_rows(run / "stream.csv", kind="stream.csv")
    runs = read_trace(run / "trace.json")
    argv = " ".join(meta.get("command", "").split()[1:])
    seed = int(m.group(1)) if (m := re.search(r"--seed[ =](\d+)", argv)) else 0
    size = "quick" if re.search(r"--size[ =]quick", argv) else "full"
    states = run_states(meta["devices"])
    rows = []
    for r in table.to_dict("records"):
        ts, members = streams.requests(r["taskset"], int(r["taskset"].partition(":")[2]), seed, size)
        times = np.array([t for t, _ in streams.read_trace(arrivals_file(run, r["taskset"], r["load"], r["mix"]))])
        st = streams.Stream(r["taskset"], ts.tasks, times, members)
        here = [s for s in states if s.backend in r["mix"].split("+")]
        key = f"{r['taskset']}@{r['load']:g}"
        keys = [k for k in runs if k[0].startswith(r["taskset"] + "@") and k[2] == r["mix"]]
        mine = [runs[k] for k in keys]
        own = runs.get((key, r["policy"], r["mix"]), [])
        sim = replay(
            ts.tasks,
            here,
            make(r["policy"], seed),
            own,
            mine,
            call_overhead(mine),
            notify_latency(mine, ts.tasks, [_released(run, r["taskset"], k[0], r["mix"], members) for k in keys]),
            {s.name: s.core_group for s in here if s.core_group is not None},
            st.arrivals(),
            planned_overhead(own),
            own_times=True,  # a stream's tail latency is the spread of its tasks' times, which a mean smooths away
            errors=planned_error(own),
        )
        got = streams.latency(st, sim.start, sim.end)
        rows.append(
            dict(
                run=run.name,
                taskset=r["taskset"],
                mix=r["mix"],
                policy=r["policy"],
                load=r["load"],
                real_p50_s=r["p50_s"],
                sim_p50_s=got["p50_s"],
                real_p99_s=r["p99_s"],
                sim_p99_s=got["p99_s"],
                p50_err_pct=100 * (got["p50_s"] / r["p50_s"] - 1),
                p99_err_pct=100 * (got["p99_s"] / r["p99_s"] - 1),
                timing=STREAM_TIMING,
            )
        )
    return rows


def _released(run: Path, name: str, key: str, mix: str, members: list) -> dict:
    """task id -> when the stream released its request (run clock), for the run of task set `key`
    ('<stream>@<load>'); members: request -> its task ids."""
    path = arrivals_file(run, name, float(key.partition("@")[2]), mix)
    times = [t for t, _ in streams.read_trace(path)] if path.exists() else []
    return {i: t for t, ids in zip(times, members) for i in ids}
