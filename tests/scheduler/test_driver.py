"""The driver loop (hetero.scheduler.driver) with a scripted executor: no Ray, no clock."""

import pytest

from hetero.errors import HeteroError
from hetero.scheduler import policies, tasks
from hetero.scheduler.device import DeviceState
from hetero.scheduler.driver import Died, Done, Driver, learn
from hetero.scheduler.perfmodel import PerfModel


class Script:
    """An executor whose tasks each take 1 s, one at a time per device, ending in the order they were sent;
    `die` names a device that dies when it would end its first task."""

    def __init__(self, die=None):
        self.t, self.sent, self.die = 0.0, [], die

    def now(self):
        return self.t

    def send(self, task, device, predicted, transfer):
        self.sent.append((task, device))

    def wait(self, until=None):
        task, device = self.sent.pop(0)
        self.t += 1.0
        if device.name == self.die and device.alive:
            self.sent = [(t, d) for t, d in self.sent if d is not device]
            return [Died(device)]
        return [Done(task, device, self.t - 1.0, self.t)]


def _devices():
    return [DeviceState("a", "a", "a"), DeviceState("b", "b", "b")]


@pytest.mark.parametrize("name", ["round-robin", "dmda", "eager", "heteroprio"])
def test_a_dead_device_loses_no_task_and_runs_none_twice(name):
    ts = tasks.mixed(12, size="quick", inputs=False)
    rec = Driver(ts.tasks, _devices(), policies.make(name), PerfModel()).run(Script(die="a"))
    assert sorted(rec.where) == sorted(t.id for t in ts.tasks)
    assert set(rec.where.values()) == {"b"} and rec.dead == ["a"] and rec.retries >= 1


def test_every_device_dead_is_one_line():
    ts = tasks.mixed(4, size="quick", inputs=False)
    devs = [DeviceState("a", "a", "a")]
    with pytest.raises(HeteroError, match="every device died; last: a"):
        Driver(ts.tasks, devs, policies.make("eager"), PerfModel()).run(Script(die="a"))


def test_a_time_shared_with_a_core_mate_is_learnt_only_where_none_is_known(tmp_path):
    model = PerfModel(tmp_path / "m.json")
    st = DeviceState("numba", "numba", "cpu")
    t = tasks.mixed(1, size="quick", inputs=False).tasks[0]
    learn(model, st, t, 0.01, alone=False)  # no sample yet: learnt all the same (the first is dropped)
    learn(model, st, t, 0.01, alone=False)
    assert model.history("numba", "cpu", t.case) is not None
    before = model.predict("numba", "cpu", t.case)
    learn(model, st, t, 5.0, alone=False)  # known now: a shared time teaches nothing
    assert model.predict("numba", "cpu", t.case) == before
    learn(model, st, t, 5.0, alone=True)
    assert model.predict("numba", "cpu", t.case) > before


def test_every_policy_in_the_registry_is_made_by_its_name():
    for name in policies.ORDER:
        assert policies.make(name).name == name


def test_auto_runs_dmda_on_a_batch_and_the_faster_simulated_candidate_on_a_graph():  # a stream: below
    from hetero.scheduler.policies.auto import GRAPH_CANDIDATES, SIM_MARGIN, pick
    from hetero.scheduler.simulate import simulate
    from tests.scheduler.test_sched_policies import MODEL, devs

    for spec in ("mixed:20", "gan:2", "transformer:2"):
        ts = tasks.make(spec, size="quick", inputs=False)
        alone = {
            n: simulate(ts.tasks, devs("cpu", "gpu"), policies.make(n), MODEL) for n in ("dmda", *GRAPH_CANDIDATES)
        }
        spans = {n: alone[n].makespan for n in GRAPH_CANDIDATES}
        inner = "dmda" if spec.startswith("mixed") else pick(spans)
        auto = policies.make()
        assert auto.name == "auto"
        a = simulate(ts.tasks, devs("cpu", "gpu"), auto, MODEL)
        assert type(auto.inner).__name__.lower() == inner == auto.placing(), spec
        assert (auto.simulated is None) == spec.startswith("mixed")  # it simulates its candidates on graphs only
        assert a.where == alone[inner].where and a.makespan == alone[inner].makespan
        assert a.makespan <= min(spans.values()) * (1 + SIM_MARGIN) or spec.startswith("mixed")
        # on a graph the limit is known before the choice: the lower of the candidates'
        assert auto.sim_limit(ts.tasks) == (None if spec.startswith("mixed") else 5000)


def test_auto_on_a_graph_keeps_heteroprio_where_a_prediction_is_missing():
    from hetero.scheduler.policies.auto import simulated_makespans
    from tests.scheduler.test_sched_policies import MODEL, Table, devs

    ts = tasks.make("gan:2", size="quick", inputs=False)
    assert set(simulated_makespans(ts.tasks, devs("cpu", "gpu"), MODEL)) == {"heteroprio", "dmda"}
    gappy = Table({"cpu": {"conv2d": 1e9}, "gpu": {"conv2d": 1e9, "conv_transpose2d": 1e9}})  # cpu: no convT
    assert simulated_makespans(ts.tasks, devs("cpu", "gpu"), gappy) is None
    auto = policies.make()
    assert auto.placing() == "auto"  # not planned yet
    auto.plan(ts.tasks, devs("cpu", "gpu"), gappy)
    assert type(auto.inner).__name__ == "HeteroPrio" and auto.placing() == "heteroprio"
    assert auto.simulated is None


def test_auto_takes_heteroprio_on_a_graph_only_when_simulated_faster_than_dmda_by_the_margin():
    from hetero.scheduler.policies.auto import SIM_MARGIN, pick

    assert pick({"dmda": 1.0, "heteroprio": 1.0}) == "dmda"
    assert pick({"dmda": 1.0, "heteroprio": 1.0 - SIM_MARGIN / 2}) == "dmda"  # within the predictions' error
    assert pick({"dmda": 1.0, "heteroprio": 1.0 - 2 * SIM_MARGIN}) == "heteroprio"
    assert pick({"dmda": 1.0, "heteroprio": 1.5}) == "dmda"


def test_auto_simulating_its_candidates_teaches_the_perf_model_nothing(tmp_path):
    from hetero.scheduler.perfmodel import PerfModel
    from hetero.scheduler.policies.auto import simulated_makespans
    from tests.scheduler.test_sched_policies import devs

    ts = tasks.make("gan:2", size="quick", inputs=False)
    model = PerfModel(tmp_path / "m.json")
    for d in ("cpu", "gpu"):
        for t in ts.tasks:
            model.add(d, d, t.case, 0.01 if d == "cpu" else 0.02)
    before = {(d, t.case): model.history(d, d, t.case).count for d in ("cpu", "gpu") for t in ts.tasks}
    assert set(simulated_makespans(ts.tasks, devs("cpu", "gpu"), model)) == {"heteroprio", "dmda"}
    assert {(d, t.case): model.history(d, d, t.case).count for d in ("cpu", "gpu") for t in ts.tasks} == before


def test_auto_runs_heteroprio_on_a_stream():
    from hetero.scheduler.simulate import simulate
    from tests.scheduler.test_sched_policies import MODEL, devs

    ts = tasks.make("mixed:20", size="quick", inputs=False)
    arrivals = [(0.01 * i, [t]) for i, t in enumerate(ts.tasks)]
    auto, same = policies.make(), policies.make("heteroprio")
    a = simulate(ts.tasks, devs("cpu", "gpu"), auto, MODEL, arrivals=arrivals)
    b = simulate(ts.tasks, devs("cpu", "gpu"), same, MODEL, arrivals=arrivals)
    assert type(auto.inner).__name__ == "HeteroPrio" and a.end == b.end
    assert auto.sim_limit(ts.tasks, streaming=True) == same.max_sim_tasks


def test_outputs_keep_what_a_child_or_the_check_needs_and_drop_the_rest():
    from hetero.scheduler.runtime import Outputs

    ts = tasks.transformer(layers=2, batches=1, size="quick", inputs=False)  # a chain of 10 tasks
    child = {d: t.id for t in ts.tasks for d in t.deps}
    checked = {ts.tasks[-1].id}
    out = Outputs(ts.tasks, checked)
    for t in ts.tasks:  # in dependency order
        for d in t.deps:
            assert d in out, f"task {t.id} needs output {d}"
        out.finished(t.id, f"ref{t.id}")
        kept = set(out)
        assert kept <= checked | set(ts.tasks[-1].deps) | {i for i in kept if child.get(i, -1) > t.id}
    assert set(out) == checked | set(ts.tasks[-1].deps)


def test_a_streams_requests_of_one_kind_share_their_inputs():
    from hetero.scheduler import streams

    ts, members = streams.requests("mixed:60", 60, size="quick", inputs=True)
    assert len(members) == 60 and len(ts.consts) == len({t.case for t in ts.tasks}) < 60
