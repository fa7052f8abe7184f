"""The simulator: pooling identical devices changes no decision, profiles say how they were obtained, the CLI
runs a mix at scale, and a committed real run is reproduced from its own durations."""

import math
from pathlib import Path

import pytest

from bench.simulate import cli
from hetero import fpga_model
from hetero.scheduler import policies, profiles, tasks
from hetero.scheduler.device import DeviceState
from hetero.scheduler.perfmodel import PerfModel
from hetero.scheduler.simulate import simulate
from tests.scheduler.test_sched_policies import Table

RESULTS = Path(__file__).resolve().parents[2] / "results"
SPEED = Table(
    {
        "fast": {"matmul": 4e9, "attention": 1e9, "conv2d": 2e9, "conv_transpose2d": 2e9},
        "slow": {"matmul": 1e9, "attention": 2e9, "conv2d": 1e9, "conv_transpose2d": 1e9},
        "mm": {"matmul": 8e9},
    }
)


def _mix():
    out = []
    for kind, n in (("fast", 3), ("slow", 5), ("mm", 2)):
        sup = frozenset(SPEED.speed[kind])
        out += [DeviceState(f"{kind}.{i}", kind, kind, 1e-4, 1e10, sup) for i in range(n)]
    return out


@pytest.mark.parametrize("name", ["dmda", "eager"])
def test_pooling_changes_no_decision(name):
    ts = tasks.mixed(300, size="quick", inputs=False)
    pooled = simulate(ts.tasks, _mix(), policies.make(name), SPEED, pool=True)
    flat = simulate(ts.tasks, _mix(), policies.make(name), SPEED, pool=False)
    assert math.isclose(pooled.makespan, flat.makespan, rel_tol=1e-12)
    kind = lambda where: sorted((t, d.split(".")[0]) for t, d in where.items())  # noqa: E731
    assert kind(pooled.where) == kind(flat.where)  # same kind of device for every task
    assert len(pooled.where) == 300


def test_every_policy_runs_every_task_once_on_a_capable_device():
    ts = tasks.mixed(200, size="quick", inputs=False)
    for name in policies.ORDER:
        r = simulate(ts.tasks, _mix(), policies.make(name), SPEED)
        assert sorted(r.where) == [t.id for t in ts.tasks]
        assert all(r.where[t.id].startswith(("fast", "slow")) for t in ts.tasks if t.case.workload != "matmul")
        assert r.makespan == pytest.approx(max(r.end.values()))
        assert sum(r.busy.values()) == pytest.approx(sum(r.end[i] - r.start[i] for i in r.where))


def test_profiles_from_results_and_models():
    model = PerfModel(Path("/nonexistent"))
    model.ingest_results(RESULTS)
    case = tasks.get("matmul").case(dict(M=1024, N=1024, K=1024))
    u250 = profiles.profile("u250", model)
    pr = fpga_model.PRESETS["alveo-u250-fp32"]
    assert u250.source.startswith("modeled: fpga_model") and u250.seconds(case) > 2 * 1024**3 / (pr.peak_gflops * 1e9)
    assert u250.seconds(case) == fpga_model.estimate(pr, case).kernel_s
    a100 = profiles.profile("a100", model)
    assert a100.source.startswith("modeled: roofline")
    assert a100.seconds(case) == pytest.approx(2 * 1024**3 / 19.5e12 + profiles.GPU_LAUNCH_S)
    if any(b == "cupy" for b, *_ in model.entries):
        h100 = profiles.profile("h100", model)
        assert h100.measured and h100.seconds(case) >= 2 * 1024**3 / 67e12
    with pytest.raises(ValueError, match="device kind 'tpu9'"):
        profiles.profile("tpu9", model)
    assert profiles.parse_mix("8xh100, u250,2*cpu") == [(8, "h100"), (1, "u250"), (2, "cpu")]
    for bad in ("0xh100", "8x", "8 h100", ""):
        with pytest.raises(ValueError, match="--mix"):
            profiles.parse_mix(bad)


def test_cli_mix_and_errors(tmp_path, capsys):
    assert (
        cli(
            [
                "--mix",
                "4xh100,2xu250,1xcpu",
                "--mix",
                "2xu250",
                "--tasks",
                "mixed:500",
                "--tasks",
                "gan:2",
                "--policy",
                "dmda,round-robin",
                "--out",
                str(tmp_path),
                "--name",
                "s",
            ]
        )
        == 0
    )
    import pandas as pd

    from hetero.results import CSV_READ

    df = pd.read_csv(tmp_path / "s" / "simulate.csv", **CSV_READ)
    assert len(df) == 2 * 2 * 2 and (df.gap >= 1 - 1e-9).all() and df.timing.str.startswith("modeled").all()
    assert "u250: modeled: fpga_model" in capsys.readouterr().out
    for argv, msg in (
        (["--mix", "3xtpu"], "device kind 'tpu'"),
        (["--mix", "x"], "device kind 'x'"),
        (["--mix", "cpu", "--policy", "fifo"], "unknown policy 'fifo'"),
        (["--mix", "cpu", "--tasks", "bogus"], "unknown task set 'bogus'"),
        (["--tasks", "mixed"], "give at least one --mix"),
        (["--replay", str(tmp_path)], "not a bench.schedule run folder"),
    ):
        assert cli(argv + ["--out", str(tmp_path)]) == 2
        assert msg in capsys.readouterr().err


# Every committed schedule run (a results/schedule-* folder with its trace) is replayed from its own durations,
# and every row, every policy on every task set and mix, must land within 15% of the makespan the run measured;
# a run committed later is covered without naming it here.
REPLAYED = sorted(p.name for p in RESULTS.glob("schedule-*") if (p / "trace.json").is_file())
# Rows a committed run replays past 15%, each with the bound it must still meet and why (results/HISTORY.md).
KNOWN_MISSES: dict[tuple[str, str, str, str], float] = {
    # opencl's tasks in this run spent up to tens of ms outside their kernels (a stall of the machine, not core
    # sharing); the replay scales each task by core sharing alone, so it cannot carry them
    ("schedule-numba-opencl-fpga-zen3-cold", "gan:4", "numba+opencl+fpga-emu", "heft"): 20.0,
}


def test_the_committed_schedule_runs_are_found():
    """The replay test below is parametrized by what results/ holds: an empty list would make it pass vacuously."""
    assert REPLAYED and {run for run, *_ in KNOWN_MISSES} <= set(REPLAYED)


@pytest.mark.parametrize("name", REPLAYED)
def test_replay_of_a_committed_real_run_within_15_percent(name, tmp_path):
    import shutil

    import pandas as pd

    copy = tmp_path / name
    shutil.copytree(RESULTS / name, copy)
    assert cli(["--replay", str(copy), "--out", str(tmp_path), "--name", "replay"]) == 0
    df = pd.read_csv(tmp_path / "replay" / "replay.csv", keep_default_na=False, na_values=[""])
    rows = zip(df.taskset, df.mix, df.policy, df.error_pct)
    missed = [(t, m, p, round(e, 1)) for t, m, p, e in rows if abs(e) > KNOWN_MISSES.get((name, t, m, p), 15.0)]
    assert len(df) and not missed, f"{name}: rows replayed past 15% (or past a known miss's bound): {missed}"


def test_devices_on_one_core_share_its_speed():
    """Two devices pinned to one core each run at half speed while both are busy (time slicing)."""
    ts = tasks.mixed(2, size="quick", inputs=False)
    sup = frozenset(SPEED.speed["fast"])
    pair = lambda: [DeviceState(f"fast.{i}", "fast", "fast", 0.0, math.inf, sup) for i in range(2)]  # noqa: E731
    one_each = lambda t, d: 1.0  # noqa: E731
    apart = simulate(ts.tasks, pair(), policies.make("round-robin"), SPEED, actual=one_each)
    shared = simulate(
        ts.tasks,
        pair(),
        policies.make("round-robin"),
        SPEED,
        actual=one_each,
        cores={"fast.0": "core0", "fast.1": "core0"},
    )
    assert apart.makespan == pytest.approx(1.0) and shared.makespan == pytest.approx(2.0)
    assert sorted(shared.end.values()) == pytest.approx([2.0, 2.0])


def test_a_time_taken_beside_a_core_mate_is_not_learnt():
    """As the runtime's perf model: only a task that had its core to itself teaches its device's speed (else the
    round-robin run, sharing numba's core with fpga-emu, taught every later policy numba at half speed)."""

    class Learning(Table):
        def __init__(self, speed):
            super().__init__(speed)
            self.seen = []

        def history(self, backend, device, case):
            return self.predict(backend, device, case)

        def add(self, backend, device, case, seconds):
            self.seen.append((device, seconds))

    class Told(policies.policy_class("round-robin")):
        def ended(self, task, device, seconds=None):
            told.append(seconds)

    told = []
    ts = tasks.mixed(3, size="quick", inputs=False)
    sup = frozenset(SPEED.speed["fast"])
    pair = [DeviceState(f"fast.{i}", "fast", "fast", 0.0, math.inf, sup) for i in range(2)]
    model = Learning(SPEED.speed)
    # round-robin: tasks 0 and 1 share the core from 0 to 2 s, task 2 then has it alone on fast.0 from 2 to 3 s
    r = simulate(ts.tasks, pair, Told(), model, actual=lambda t, d: 1.0, cores={"fast.0": "c", "fast.1": "c"})
    assert r.makespan == pytest.approx(3.0)
    assert model.seen == [("fast", pytest.approx(1.0))]
    assert sorted(told, key=lambda s: s is not None) == [None, None, pytest.approx(1.0)]


def test_solo_seconds_takes_out_the_time_shared():
    from hetero.scheduler.trace import solo_seconds

    # a: 0-3 s and b: 1-2 s on one core; c on another device. a ran alone 2 s and shared 1 s: 2.5 s of work
    events = [
        {"task": 0, "device": "a", "start": 0.0, "end": 3.0},
        {"task": 1, "device": "b", "start": 1.0, "end": 2.0},
        {"task": 2, "device": "c", "start": 0.0, "end": 1.0},
    ]
    assert solo_seconds(events, {"a": 0, "b": 0}) == pytest.approx([2.5, 0.5, 1.0])
    assert solo_seconds(events) == pytest.approx([3.0, 1.0, 1.0])


def test_late_binding_keeps_work_off_a_device_slower_than_predicted():
    """dmda sends a device at most Dmda.BATCH_COMMIT tasks of a batch; the simulator does too when durations
    differ from predictions, so a device that runs 10x slower than predicted gets few tasks."""
    ts = tasks.mixed(40, size="quick", inputs=False)
    sup = frozenset(SPEED.speed["fast"])
    two = lambda: [DeviceState(n, "fast", n, 0.0, math.inf, sup) for n in ("a", "b")]  # noqa: E731
    slow_a = lambda t, d: SPEED.predict("fast", "fast", t.case) * (10 if d.name == "a" else 1)  # noqa: E731
    model = Table({"fast": SPEED.speed["fast"]})
    late = simulate(ts.tasks, two(), policies.make("dmda"), model, actual=slow_a)
    eager_commit = policies.make("dmda")
    eager_commit.BATCH_COMMIT = None  # every placement sent at once
    at_once = simulate(ts.tasks, two(), eager_commit, model, actual=slow_a)
    assert late.counts()["a"] < at_once.counts()["a"] and late.makespan < at_once.makespan


def test_call_overhead_holds_the_device_and_is_measured_from_gaps():
    from hetero.scheduler.trace import call_overhead

    ts = tasks.mixed(6, size="quick", inputs=False)
    one = [DeviceState("fast.0", "fast", "fast", 1e-4, 1e10, frozenset(SPEED.speed["fast"]))]
    base = simulate(ts.tasks, one, policies.make("round-robin"), SPEED)
    slow = simulate(ts.tasks, one, policies.make("round-robin"), SPEED, overhead={"fast.0": 0.01})
    # all six are queued at once: each later task starts 10 ms later than the one before it did
    assert slow.makespan == pytest.approx(base.makespan + 5 * 0.01)
    assert slow.busy == pytest.approx(base.busy)  # the overhead is not counted as work
    events = [{"device": "a", "start": s, "end": e} for s, e in ((0, 1), (1.5, 2), (2.1, 3), (4, 5))]
    assert call_overhead([events]) == {"a": pytest.approx(0.5)}  # median of the gaps 0.5, 0.1, 1.0


def test_completion_notice_is_measured_and_delays_only_behind_a_busy_device():
    from types import SimpleNamespace

    from hetero.scheduler.trace import notify_latency

    # parent 0 ends at 1.0 on device a, which goes straight on to task 1 (sent long before); child 2 is sent at 1.3
    events = [
        {"task": 0, "device": "a", "sent": 0.0, "start": 0.0, "end": 1.0},
        {"task": 1, "device": "a", "sent": 0.0, "start": 1.0, "end": 2.0},
        {"task": 2, "device": "b", "sent": 1.3, "start": 1.35, "end": 2.5},
    ]
    graph = [SimpleNamespace(id=0, deps=()), SimpleNamespace(id=1, deps=()), SimpleNamespace(id=2, deps=(0,))]
    assert notify_latency([events], graph) == {"a": (pytest.approx(0.3), 0.0)}
    # device c idles between 3 and 4 (4 was ready all along): the driver's turnaround, 0.2 s
    idle = events + [
        {"task": 3, "device": "c", "sent": 0.0, "start": 0.0, "end": 1.0},
        {"task": 4, "device": "c", "sent": 1.2, "start": 1.25, "end": 2.0},
    ]
    graph += [SimpleNamespace(id=3, deps=()), SimpleNamespace(id=4, deps=())]
    assert notify_latency([idle], graph)["c"] == (0.0, pytest.approx(0.2))
    # a stream's request 4 arrived at 1.19, after task 3 ended: c idled waiting for it, no turnaround of the driver
    assert "c" not in notify_latency([idle], graph, [{4: 1.19}])
    assert notify_latency([idle], graph, [{4: 0.5}])["c"] == (0.0, pytest.approx(0.2))  # waiting: the driver's
    assert notify_latency([[{k: v for k, v in e.items() if k != "sent"} for e in events]], graph) == {}

    one = lambda: [DeviceState("fast.0", "fast", "fast", 1e-4, 1e10, frozenset(SPEED.speed["fast"]))]  # noqa: E731
    chain = tasks.transformer(layers=1, batches=1, size="quick", inputs=False)  # nothing ever queued behind
    four = tasks.transformer(layers=1, batches=4, size="quick", inputs=False)  # four chains share the device
    for ts, slower in ((chain, False), (four, True)):
        base = simulate(ts.tasks, one(), policies.make("dmda"), SPEED)
        late = simulate(ts.tasks, one(), policies.make("dmda"), SPEED, notify={"fast.0": (0.05, 0.0)})
        assert (late.makespan > base.makespan + 0.04) if slower else late.makespan == pytest.approx(base.makespan)


def test_replay_plans_from_the_predictions_the_run_recorded(tmp_path):
    """A trace keeps what the perf model predicted per device when the policy planned; a replay's policies plan
    from that (HEFT's static plan hangs on it), while tasks take the run's own durations."""
    from hetero.scheduler import trace
    from hetero.scheduler.replay import RunTimes
    from hetero.scheduler.runtime import RunResult

    ts = tasks.mixed(2, size="quick", inputs=False)
    events = [
        {
            "task": t.id,
            "label": t.label,
            "workload": t.case.workload,
            "shape": t.case.shape,
            "device": "a",
            "sent": 10.0,
            "start": 10.0 + i,
            "end": 10.5 + i,
            "kernel_s": 0.5,
            "flops": t.flops,
            "predicted": {"a": 0.25, "b": 0.125},
            "planned_overhead": 0.002,
        }
        for i, t in enumerate(ts.tasks)
    ]
    text = trace.chrome_trace([RunResult("dmda", ts, "a+b", events, t0=10.0, t1=12.0)])
    (tmp_path / "trace.json").write_text(text)
    back = trace.read_trace(tmp_path / "trace.json")[(ts.name, "dmda", "a+b")]
    assert [e["predicted"] for e in back] == [{"a": 0.25, "b": 0.125}] * 2
    assert [e["planned_overhead"] for e in back] == [0.002] * 2
    times = RunTimes([back], ts.tasks)
    case = ts.tasks[0].case
    assert times.predict("x", "a", case) == 0.25 and times.predict("x", "b", case) == 0.125
    assert times.actual(ts.tasks[0], DeviceState("a", "x", "a")) == pytest.approx(0.5)
    plain = RunTimes([[{k: v for k, v in e.items() if k != "predicted"} for e in back]], ts.tasks)
    assert plain.predict("x", "a", case) == pytest.approx(0.5) and plain.predict("x", "b", case) is None


def test_a_stream_replay_gives_each_task_its_own_time_where_it_ran():
    """With own_times a task that lands on the device it ran on takes what it took there (a stream's tail is that
    spread); elsewhere, or without own_times, its kind's mean."""
    from hetero.scheduler.replay import RunTimes

    ts = tasks.mixed(2, size="quick", inputs=False)
    for t in ts.tasks:
        t.case = ts.tasks[0].case  # one kind, two tasks: 0.1 s and 0.3 s
    events = [{"task": t.id, "device": "a", "start": 0.0, "end": s} for t, s in zip(ts.tasks, (0.1, 0.3))]
    a, b = DeviceState("a", "x", "a"), DeviceState("b", "x", "b")
    own, mean = RunTimes([events], ts.tasks, own=True), RunTimes([events], ts.tasks)
    assert [own.actual(t, a) for t in ts.tasks] == pytest.approx([0.1, 0.3])
    assert [mean.actual(t, a) for t in ts.tasks] == pytest.approx([0.2, 0.2])
    assert own.actual(ts.tasks[0], b) is None


def test_replay_prices_devices_with_the_overhead_the_run_planned_with():
    """The replayed policy prices each device's calls as the run's policy did (the trace's planned_overhead), while
    a device with no planned figure is priced with the measured one."""
    from hetero.scheduler.replay import planned_overhead, replay

    ts = tasks.mixed(2, size="quick", inputs=False)
    sup = frozenset(SPEED.speed["fast"])
    states = [DeviceState(n, "fast", n, 0.0, math.inf, sup) for n in ("a", "b")]
    events = [
        {"task": t.id, "device": "a", "start": i, "end": i + 0.5, "planned_overhead": 0.25}
        for i, t in enumerate(ts.tasks)
    ]
    assert planned_overhead(events) == {"a": 0.25} and planned_overhead([{"device": "a"}]) == {}
    sim = replay(ts.tasks, states, policies.make("dmda"), events, overhead={"a": 0.01, "b": 0.02}, planned={"a": 0.25})
    assert [d.overhead for d in states] == [0.25, 0.02] and len(sim.where) == len(ts.tasks)


def test_a_policy_too_slow_for_a_large_set_is_skipped_with_a_note(tmp_path, capsys):
    # heteroprio looks at every ready task for each free device: past max_sim_tasks it is skipped, not run for hours
    import pandas as pd

    limit = policies.make("heteroprio").max_sim_tasks
    assert (
        cli(
            [
                "--mix",
                "u250",
                "--tasks",
                f"mixed:{limit + 1}",
                "--policy",
                "heteroprio,eager",
                "--out",
                str(tmp_path),
                "--name",
                "big",
            ]
        )
        == 0
    )
    out = capsys.readouterr()
    assert "heteroprio: skipped" in out.out + out.err
    assert list(pd.read_csv(tmp_path / "big" / "simulate.csv").policy) == ["eager"]
