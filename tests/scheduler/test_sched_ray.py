"""The scheduler on Ray with hardware-free devices: null (fixed modelled time) and numpy (the reference)."""

import os
import subprocess
import sys
import textwrap

import pytest

from hetero.scheduler import policies, runtime, tasks, workers
from hetero.scheduler.perfmodel import PerfModel


@pytest.fixture(scope="module")
def devices(ray_session):
    os.environ["HETERO_NULL_SECONDS"] = "0.002"
    devs, notes = workers.start_devices(["null", "numpy"])
    yield devs
    workers.stop_devices(devs)


def _all_done(res, ts):
    ids = sorted(e["task"] for e in res.events)
    assert ids == [t.id for t in ts.tasks]  # every task exactly once
    assert res.checked == len(ts.tasks) and res.wrong == []


def test_mixed_every_policy_all_outputs_correct(devices):
    ts = tasks.mixed(12, size="quick")
    model = PerfModel()
    runtime.calibrate(ts, devices, model, reps=1)
    for name in ("dmda", "heteroprio", "round-robin", "eager"):
        res = runtime.execute(ts, devices, policies.make(name), model, check="all")
        _all_done(res, ts)
        assert res.makespan > 0 and res.retries == 0
        # the driver's CPU time over the overhead's spans: some, and no more than their wall time (1 ms slack for
        # the two clocks' granularity)
        assert 0 < res.overhead_cpu_s <= res.overhead_s + 1e-3


def test_calibration_replaces_kernel_medians_and_skips_calibrated_kinds(devices):
    """missing_only calibrates a kind known only from a bench.run median (timed under other conditions), and
    leaves a kind with task samples alone."""
    ts = tasks.mixed(4, size="quick")
    model = PerfModel()
    dev = devices[1].state  # numpy
    kinds = {t.case for t in ts.tasks}
    for case in kinds:
        model.add(dev.backend, dev.device, case, 1e-6, source="kernel")
    assert runtime.calibrate(ts, devices[1:], model, reps=1, missing_only=True) == 2 * len(kinds)
    assert {model.basis(dev.backend, dev.device, c) for c in kinds} == {"task"}
    assert runtime.calibrate(ts, devices[1:], model, reps=1, missing_only=True) == 0


def test_a_device_runs_one_task_at_a_time_and_dmda_sends_it_at_most_commit(devices, tmp_path):
    # the actor takes two calls at once (one computing, one moving data): the compute must still be one at a time;
    # dmda holds back what a device cannot start soon (late binding) and learns each device's per-call overhead
    ts = tasks.mixed(16, size="quick")
    model = PerfModel(tmp_path / "pm.json")
    runtime.calibrate(ts, devices, model, reps=1)
    for pol in (policies.make("dmda"), policies.make("heteroprio")):  # late binding; pulling, 2 slots
        res = runtime.execute(ts, devices, pol, model, check="all")
        _all_done(res, ts)
        for d in devices:
            mine = sorted((e for e in res.events if e["device"] == d.state.name), key=lambda e: e["start"])
            assert all(b["start"] >= a["end"] for a, b in zip(mine, mine[1:]))  # never two at once
            for e in mine:  # at each sending, what the device held (sent, not ended) is at most commit
                assert sum(1 for o in mine if o["sent"] <= e["sent"] < o["end"]) <= pol.commit
    learnt = {k: model.call_overhead(*k) for k in model.calls}
    assert learnt and all(0 < v < 1 for v in learnt.values())
    assert {d.state.overhead for d in devices if (d.state.backend, d.state.device) in learnt} <= set(learnt.values())
    model.save()
    assert PerfModel.load(model.path).calls.keys() == model.calls.keys()


def test_round_robin_alternates_in_task_order(devices):
    # every ready task is offered once per pass, in order (a pass used to skip every other one)
    ts = tasks.mixed(8, size="quick")
    res = runtime.execute(ts, devices, policies.make("round-robin"), PerfModel(), check="none")
    names = [d.state.name for d in devices]
    assert {e["task"]: e["device"] for e in res.events} == {t.id: names[i % 2] for i, t in enumerate(ts.tasks)}


@pytest.mark.parametrize("spec", ["transformer:2", "gan:2"])
def test_graphs_all_outputs_correct(devices, spec):
    ts = tasks.make(spec, size="quick")
    for name in ("heft", "dmda", "heteroprio"):
        res = runtime.execute(ts, devices, policies.make(name), PerfModel(), check="all")
        _all_done(res, ts)
        ends = {e["task"]: e["end"] for e in res.events}
        starts = {e["task"]: e["start"] for e in res.events}
        assert all(starts[t.id] >= ends[d] for t in ts.tasks for d in t.deps)


@pytest.mark.parametrize("policy", ["round-robin", "dmda", "heteroprio"])  # pushed, and pulled by free devices
def test_dead_actor_tasks_rerun_elsewhere(ray_session, policy):
    """Fault injection: a device actor killed mid-run loses no task, runs none twice, and its row says so."""
    import ray

    from hetero.scheduler import summary

    devs, _ = workers.start_devices(["null", "numpy"])
    try:
        ts = tasks.mixed(16, size="quick")
        killed = []

        def kill_after_three(res, task, device):
            if len(res.events) == 3 and not killed:
                victim = next(d for d in devs if d.state.name == "null")
                ray.kill(victim.actor)
                killed.append(victim.state.name)

        model = PerfModel()
        if policy != "round-robin":  # measured, so that numpy is not left to the null device as unexplored
            runtime.calibrate(ts, devs, model, reps=1)
        res = runtime.execute(ts, devs, policies.make(policy), model, check="all", on_done=kill_after_three)
        _all_done(res, ts)
        assert res.dead == ["null"] and res.retries >= 1
        row = summary.summarize([res], [d.state for d in devs], model)[0]
        assert (row["lost_devices"], row["alive_start"], row["alive_end"]) == ("null", "null,numpy", "numpy")
        later = runtime.execute(ts, devs, policies.make(policy), model, check="none")
        row = summary.summarize([later], [d.state for d in devs], model)[0]
        assert row["alive_start"] == "numpy" and row["devices"] == "null,numpy"  # it ran without null: marked
    finally:
        workers.stop_devices(devs)


def test_a_calibration_keeps_what_it_measured_when_a_device_dies(ray_session, tmp_path):
    import ray

    devs, _ = workers.start_devices(["numpy", "null"])
    try:
        ts = tasks.mixed(4, size="quick")
        ray.kill(next(d for d in devs if d.state.name == "null").actor)
        notes = []
        model = PerfModel(tmp_path / "m.json")
        runs = runtime.calibrate(ts, devs, model, reps=1, warn=notes.append)
        assert runs > 0 and [d.state.name for d in devs if not d.state.alive] == ["null"]
        assert notes == ["note: device null died during calibration; continuing without it"]
        assert all(model.history("numpy", d.state.device, t.case) for d in devs[:1] for t in ts.tasks)
    finally:
        workers.stop_devices(devs)


def test_two_node_cluster_uses_every_node():
    script = textwrap.dedent("""
        import os
        os.environ["HETERO_NULL_SECONDS"] = "0.001"
        import ray
        from ray.cluster_utils import Cluster
        from hetero.scheduler import policies, runtime, tasks, workers
        from hetero.scheduler.perfmodel import PerfModel
        c = Cluster(initialize_head=True, head_node_args=dict(num_cpus=1, include_dashboard=False))
        c.add_node(num_cpus=1)
        c.wait_for_nodes()
        workers.connect(c.address)
        devs, _ = workers.start_devices(["null"])
        ts = tasks.mixed(8, size="quick")
        res = runtime.execute(ts, devs, policies.make("round-robin"), PerfModel(), check="all")
        assert sorted(d.state.name for d in devs) == ["null@0", "null@1"], [d.state.name for d in devs]
        assert {e["device"] for e in res.events} == {"null@0", "null@1"} and not res.wrong
        print("OK", len(res.events))
        ray.shutdown(); c.shutdown()
    """)
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "RAY_ADDRESS": ""},
    )
    assert "OK 8" in out.stdout, out.stderr[-2000:]


def test_cli_quick_run_and_errors(ray_session, tmp_path, capsys):
    from bench.schedule import cli

    assert (
        cli(
            [
                "--devices",
                "null,numpy",
                "--tasks",
                "mixed:6",
                "--size",
                "quick",
                "--policy",
                "dmda,round-robin",
                "--model",
                str(tmp_path / "pm.json"),
                "--out",
                str(tmp_path),
                "--name",
                "t",
                "--reps",
                "1",
                "--from-results",
                "",
                "--repeat",
                "3",
            ]
        )
        == 0
    )
    import json

    import pandas as pd

    df = pd.read_csv(tmp_path / "t" / "schedule.csv")
    assert set(df.policy) == {"dmda", "round-robin"}
    assert set(df.placed_by) == {"dmda=3", "round-robin=3"}  # each policy placed its own three runs
    assert (df.gap >= 0.99).all() and (df.wrong == 0).all()
    assert (
        (df.repeats == 3).all()
        and (df.makespan_min_s <= df.makespan_s).all()
        and (df.makespan_s <= df.makespan_max_s).all()
    )
    # every run's gap against its own bound; the median-makespan run's gap is one of them
    assert (df.gap_min >= 0.99).all() and (df.gap_min <= df.gap_median).all() and (df.gap_median <= df.gap_max).all()
    assert ((df.gap_min <= df.gap + 1e-9) & (df.gap <= df.gap_max + 1e-9)).all()
    trace = json.loads((tmp_path / "t" / "trace.json").read_text())
    assert any(e["ph"] == "X" and e["dur"] > 0 for e in trace["traceEvents"])
    capsys.readouterr()
    for bad, word in (
        (["--devices", "cuda"], "unknown device 'cuda'"),
        (["--devices", "null", "--policy", "x"], "unknown policy 'x'"),
        (["--devices", "null", "--tasks", "bogus"], "unknown task set 'bogus'"),
    ):
        assert cli(bad) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and word in err[0]


def test_cold_runs_each_start_from_the_calibrated_model(ray_session, tmp_path, capsys):
    """bench.schedule --cold: no run learns from another, and the saved model keeps only the calibration."""
    import json

    import pandas as pd

    from bench.schedule import cli

    common = ["--devices", "null,numpy", "--tasks", "mixed:6", "--size", "quick", "--reps", "1"]
    common += ["--model", str(tmp_path / "pm.json"), "--from-results", ""]
    assert cli(["calibrate", *common]) == 0
    calibrated = json.loads((tmp_path / "pm.json").read_text())["entries"]
    argv = [*common, "--policy", "auto,single", "--cold", "--repeat", "2", "--out", str(tmp_path), "--name", "c"]
    assert cli(argv) == 0
    assert json.loads((tmp_path / "pm.json").read_text())["entries"] == calibrated
    df = pd.read_csv(tmp_path / "c" / "schedule.csv")
    assert set(df.model_knew) == {"calibration only"} and (df.repeats == 2).all()
    assert dict(zip(df.policy, df.placed_by)) == {"auto": "dmda=2", "single": "single=2"}  # auto: dmda on a batch
    assert "auto>dmda" in capsys.readouterr().out  # the table names the rules that placed the tasks
    assert cli([*common, "--cold", "--arrivals", "poisson"]) == 2
    assert "--cold" in capsys.readouterr().err


def test_a_task_that_ran_beside_a_core_mate_is_told_apart():
    """runtime._overlapped: numba and fpga-emu pinned to one core, opencl on its own. A numba task from 1.0 to
    2.0 s shared the core if fpga-emu's last task ended after 1.0 s or one of its tasks was sent before 2.0 s."""
    mates = {"numba": ["fpga-emu"], "fpga-emu": ["numba"], "opencl": []}
    stats = {"start": 1.0, "end": 2.0}
    opencl_busy = {"ref": (None, "opencl", None, 0.5)}
    assert not runtime._overlapped("numba", stats, mates, {"fpga-emu": 0.9}, opencl_busy)
    assert runtime._overlapped("numba", stats, mates, {"fpga-emu": 1.5}, {})
    assert runtime._overlapped("numba", stats, mates, {}, {"ref": (None, "fpga-emu", None, 1.9)})
    assert not runtime._overlapped("numba", stats, mates, {}, {"ref": (None, "fpga-emu", None, 2.1)})
    assert not runtime._overlapped("opencl", stats, mates, {"numba": 1.5, "fpga-emu": 1.5}, {})


def test_a_stream_run_and_its_replay(ray_session, tmp_path, capsys, monkeypatch):
    """bench.schedule --arrivals: requests placed as they arrive, stream.csv with latency percentiles per load
    and policy, the arrivals kept; bench.simulate --replay of it: simulated against measured p50 and p99."""
    import pandas as pd

    from bench.schedule import cli
    from bench.simulate import cli as simulate

    monkeypatch.setenv("HETERO_NULL_SECONDS", "0.002")
    argv = [
        "--mixes",
        "numpy;numpy+null",
        "--tasks",
        "mixed",
        "--size",
        "quick",
        "--arrivals",
        "poisson",
        "--load",
        "0.3,0.6",
        "--requests",
        "24",
        "--policy",
        "dmda,eager",
        "--slo",
        "1",
        "--out",
        str(tmp_path),
        "--name",
        "s",
        "--model",
        str(tmp_path / "m.json"),
        "--from-results",
        "",
    ]
    assert cli(argv) == 0
    df = pd.read_csv(tmp_path / "s" / "stream.csv")
    assert len(df) == 8 and (df.completed == 24).all() and (df.p99_s >= df.p50_s).all()
    assert "knee numpy+null mixed:24 dmda" in capsys.readouterr().out
    # each mix has its own capacity, so its own arrival rate at a load, kept in its own file
    one, two = (tmp_path / "s" / f"arrivals-mixed-24-{m}-load0.3.csv" for m in ("numpy", "numpy+null"))
    assert one.read_text() != two.read_text()
    assert simulate(["--replay", str(tmp_path / "s"), "--out", str(tmp_path), "--name", "r"]) == 0
    rep = pd.read_csv(tmp_path / "r" / "replay.csv")
    assert len(rep) == 8 and rep.sim_p99_s.gt(0).all() and "p99_err_pct" in rep
