"""The guard (hetero.scheduler.slips): a task leaves its fastest device only if the other device still finishes
first with its prediction stretched by its error; the error is learnt per device and assumed large when unknown."""

import json

import pytest

from hetero.scheduler import policies, tasks
from hetero.scheduler.device import DeviceState
from hetero.scheduler.driver import learn
from hetero.scheduler.perfmodel import ERROR_AFTER, PerfModel
from hetero.scheduler.slips import ASSUMED_ERROR, Slips, guarded, starting_error
from tests.scheduler.test_sched_policies import Table, devs

FAST_AND_HALF = Table({"cpu": {"matmul": 2e9}, "acc": {"matmul": 1e9}})  # acc: half cpu's speed


def _graph_task_with_busy_cpu(m, d):
    """A matmul of a graph, with cpu's queue 1.5x its time on cpu: acc (2x) would finish first, at 2x against
    2.5x, unless its prediction may run 25% long or more."""
    ts = tasks.transformer(1, size="quick")
    t = next(x for x in ts.tasks if x.case.workload == "matmul")
    d[0].queue_end, d[0].outstanding = 1.5 * m.predict("cpu", "cpu", t.case), 1
    return ts, t


@pytest.mark.parametrize("name", ["heteroprio", "dmda"])
def test_a_device_with_an_assumed_error_does_not_take_the_fastest_devices_task(name):
    m = FAST_AND_HALF
    for error, expected in ((0.0, "acc"), (0.2, "acc"), (ASSUMED_ERROR, "cpu")):
        d = devs("cpu", "acc", model=m)
        d[1].error = error
        ts, t = _graph_task_with_busy_cpu(m, d)
        pol = policies.make(name)
        pol.plan(ts.tasks, d, m)
        if name == "heteroprio":
            got = "acc" if pol.take(d[1], [t], d, m, 0.0) is t else "cpu"
        else:
            got = pol.place(t, d, m, 0.0).name
        assert got == expected, (error, got)


def test_the_fastest_device_is_never_stretched():
    d = [DeviceState("a", "a", "a", error=5.0), DeviceState("b", "b", "b", error=5.0)]
    got = guarded({"a": 3.0, "b": 2.0}, {"a": 1.0, "b": 2.0}, Slips(d), d)
    assert got == {"a": 3.0, "b": 2.0 + 5.0 * 2.0}


def test_a_runs_observations_move_the_slip_from_where_it_started():
    d = DeviceState("acc", "acc", "acc", error=ASSUMED_ERROR)
    ts = tasks.mixed(3, size="quick", workloads=("matmul",))
    s = Slips([d])
    p = FAST_AND_HALF.predict("acc", "acc", ts.tasks[0].case)
    for t in ts.tasks:  # three tasks that each ran exactly as predicted
        s.placed(t, FAST_AND_HALF.predict("acc", "acc", t.case))
        s.ended(t, d, FAST_AND_HALF.predict("acc", "acc", t.case))
    assert s.value["acc"] == pytest.approx(ASSUMED_ERROR * 0.7**3)
    s.placed(ts.tasks[0], p)
    s.ended(ts.tasks[0], d, None)  # shared its cores: says nothing
    assert s.value["acc"] == pytest.approx(ASSUMED_ERROR * 0.7**3) and p > 0


def test_the_perf_model_learns_saves_and_reloads_each_devices_error(tmp_path):
    pm = PerfModel(tmp_path / "pm.json")
    assert pm.error("numba", "cpu") is None and starting_error(pm, "numba", "cpu") == (ASSUMED_ERROR, "assumed")
    for took in (1.5, 1.0, 0.5)[:ERROR_AFTER]:  # 50% over, exact, faster (counts as 0)
        pm.add_error("numba", "cpu", 1.0, took)
    got = pm.error("numba", "cpu")
    assert got == pytest.approx(0.5 / 3) and starting_error(pm, "numba", "cpu") == (got, "observed")
    pm.save()
    assert PerfModel.load(pm.path).error("numba", "cpu") == pytest.approx(got)
    data = json.loads(pm.path.read_text())
    data["errors"][0]["count"] = "three"
    pm.path.write_text(json.dumps(data))
    notes = []
    assert PerfModel.load(pm.path, warn=notes.append).errors == {} and "errors[0] (numba cpu).count" in notes[0]


def test_a_save_keeps_the_errors_another_run_learnt(tmp_path):
    a, b = PerfModel(tmp_path / "pm.json"), PerfModel(tmp_path / "pm.json")
    for _ in range(ERROR_AFTER):
        a.add_error("numba", "cpu", 1.0, 1.2)
        b.add_error("opencl", "cpu", 1.0, 2.0)
    a.save()
    b.save()
    back = PerfModel.load(tmp_path / "pm.json")
    assert back.error("numba", "cpu") == pytest.approx(0.2) and back.error("opencl", "cpu") == pytest.approx(1.0)


def test_the_driver_teaches_the_error_only_from_a_task_that_ran_alone(tmp_path):
    pm = PerfModel(tmp_path / "pm.json")
    d = DeviceState("numba", "numba", "cpu")
    t = tasks.mixed(1, size="quick", workloads=("matmul",)).tasks[0]
    learn(pm, d, t, 2.0, alone=False, predicted=1.0)
    assert ("numba", "cpu") not in pm.errors
    learn(pm, d, t, 2.0, alone=True, predicted=1.0)
    learn(pm, d, t, 2.0, alone=True, predicted=None)  # sent with no prediction: nothing to compare
    assert pm.errors[("numba", "cpu")].count == 1 and pm.errors[("numba", "cpu")].mean == pytest.approx(2.0)
