"""Policies on synthetic models, no Ray: a discrete-event simulation runs each."""

import math

import pytest

from hetero.scheduler import bounds, policies, summary, tasks
from hetero.scheduler.device import DeviceState, kind
from hetero.scheduler.policies.lp_shares import first_free, lp_quota, pool_of
from hetero.scheduler.simulate import simulate


class Table:
    """A synthetic perf model: seconds = flops / speed[backend][workload] (None: unmeasured)."""

    def __init__(self, speed):
        self.speed = speed

    def predict(self, backend, device, case):
        s = self.speed.get(backend, {}).get(case.workload)
        return None if s is None else tasks.get(case.workload).flops(case.p) / s


def devs(*names, model=None):
    speed = (model or MODEL).speed
    return [DeviceState(n, n, n, supports=frozenset(speed[n]) if n in speed else None) for n in names]


# fast: matmul 3x faster on 'gpu'; attention 2x faster on 'cpu'; conv only on 'cpu'
MODEL = Table(
    {
        "cpu": {"matmul": 1e9, "attention": 2e9, "conv2d": 1e9, "conv_transpose2d": 1e9},
        "gpu": {"matmul": 3e9, "attention": 1e9},
    }
)


def _bound(ts, states):
    times = bounds.time_table(ts.tasks, states, MODEL)
    return max(bounds.lp_bound(ts.tasks, states, times), bounds.critical_path(ts.tasks, states, times))


def test_dmda_near_lower_bound_and_beats_round_robin_on_mixed():
    ts = tasks.mixed(40, size="quick")
    span = {n: simulate(ts.tasks, devs("cpu", "gpu"), policies.make(n), MODEL).makespan for n in policies.ORDER}
    bound = _bound(ts, devs("cpu", "gpu"))
    # dmda follows the LP's share per device (1.03x here); HEFT's greedy earliest finish ignores which device is
    # comparatively better at a kind (1.24x), as dmda did before it was guided by the LP (also 1.24x)
    assert span["dmda"] <= 1.1 * bound
    assert span["heft"] <= 1.3 * bound
    assert span["dmda"] < min(span[n] for n in ("round-robin", "random", "eager", "single"))
    assert all(s >= bound * (1 - 1e-9) for s in span.values())


def test_heft_and_dmda_on_graphs_respect_dependencies_and_bound():
    for ts in (tasks.transformer(2, size="quick"), tasks.gan(3, size="quick")):
        bound = _bound(ts, devs("cpu", "gpu"))
        for name in ("heft", "dmda", "heteroprio", "eager"):
            r = simulate(ts.tasks, devs("cpu", "gpu"), policies.make(name), MODEL)
            span, where = r.makespan, r.where
            assert len(where) == len(ts.tasks)
            assert bound <= span * (1 + 1e-9)
            assert all(where[t.id] == "cpu" for t in ts.tasks if t.case.workload.startswith("conv"))
        assert simulate(ts.tasks, devs("cpu", "gpu"), policies.make("heft"), MODEL).makespan <= 1.3 * bound


def test_unmeasured_device_is_explored_first():
    m = Table({"cpu": {"matmul": 1e9}})  # 'new' has no prediction
    ts = tasks.mixed(4, size="quick", workloads=("matmul",))
    d = devs("cpu", "new", model=m)
    assert policies.make("dmda").place(ts.tasks[0], d, m, 0.0).name == "new"


def test_simple_policies():
    ts = tasks.mixed(6, size="quick", workloads=("matmul",))
    d = devs("a", "b", "c")
    rr = policies.make("round-robin")
    assert [rr.place(t, d, MODEL, 0).name for t in ts.tasks] == ["a", "b", "c", "a", "b", "c"]
    r1 = [policies.make("random", 3).place(t, d, MODEL, 0).name for t in ts.tasks]
    assert r1 == [policies.make("random", 3).place(t, d, MODEL, 0).name for t in ts.tasks]
    d[0].outstanding = 1
    assert policies.make("eager").place(ts.tasks[0], d, MODEL, 0).name == "b"
    for x in d:
        x.outstanding = 1
    assert policies.make("eager").place(ts.tasks[0], d, MODEL, 0) is None
    s = policies.make("single")
    g = devs("cpu", "gpu")
    s.plan(ts.tasks, g, MODEL)
    assert s.best.name == "gpu"


def test_unknown_policy_is_one_line_error():
    with pytest.raises(ValueError, match="unknown policy 'fifo'; valid: single, round-robin, .*dmda"):
        policies.make("fifo")


def test_lp_bound_two_unrelated_devices():
    ts = tasks.mixed(10, size="quick", workloads=("matmul",))
    one = ts.tasks[0].case
    for t in ts.tasks:
        t.case = one
    m = Table({"a": {"matmul": 1.0}, "b": {"matmul": 1.0}})
    f = tasks.get("matmul").flops(one.p)
    times = bounds.time_table(ts.tasks, devs("a", "b"), m)
    assert math.isclose(bounds.lp_bound(ts.tasks, devs("a", "b"), times), 5 * f, rel_tol=1e-6)
    assert math.isclose(bounds.critical_path(ts.tasks, devs("a", "b"), times), f, rel_tol=1e-6)


def test_sharing_note_names_only_devices_that_share_a_core():
    from hetero.scheduler import actors

    node = [{"NodeID": "n0", "Alive": True, "Resources": {"CPU": 2}}]
    three, _ = actors.plan(["numba", "opencl", "fpga-emu"], node, share_cores=True)  # 3 CPU devices, 2 cores
    assert actors.sharing(three) == "note: fpga-emu, numba share cores (--share-cores)"
    assert actors.sharing([p for p in three if p.backend != "fpga-emu"]) == ""  # the numba+opencl mix
    solo, _ = actors.plan(["numba", "opencl"], node)
    assert actors.sharing(solo) == ""
    keys = actors.share_keys(three)  # what the runtime puts in DeviceState.core_group
    assert keys["numba"] == keys["fpga-emu"] == ("n0", (0,)) and keys["opencl"] is None
    assert set(actors.share_keys(solo).values()) == {None}


def test_lp_quota_gives_each_device_what_it_is_comparatively_best_at():
    # 'gpu' runs matmul 3x faster, 'cpu' attention 2x faster; conv runs only on 'cpu'
    ts = tasks.mixed(40, size="quick")
    d = devs("cpu", "gpu")
    quota = lp_quota(ts.tasks, d, MODEL)
    cpu, gpu = quota[pool_of(d[0])], quota[pool_of(d[1])]
    by_kind, workload = {}, {}
    for t in ts.tasks:
        by_kind[kind(t)] = by_kind.get(kind(t), 0) + 1
        workload[kind(t)] = t.case.workload
    assert all(cpu.get(k, 0) + gpu.get(k, 0) == n for k, n in by_kind.items())  # every task has a place
    assert all(workload[k] in ("matmul", "attention") for k in gpu)  # gpu gets what it runs
    assert sum(n for k, n in gpu.items() if workload[k] == "matmul") > sum(
        n for k, n in cpu.items() if workload[k] == "matmul"
    )
    assert lp_quota(ts.tasks, devs("cpu", "new"), MODEL) == {}  # unmeasured: explore first


def test_dmda_counts_sent_tasks_against_the_quota_and_a_steal_against_the_owner():
    ts = tasks.mixed(40, size="quick")
    d = devs("cpu", "gpu")
    pol = policies.make("dmda")
    pol.plan(ts.tasks, d, MODEL)
    conv = next(t for t in ts.tasks if t.case.workload == "conv2d")
    k, cpu = kind(conv), pol.quota[pool_of(d[0])]
    before = cpu[k]
    pol.placed(conv, d[0], MODEL.predict("cpu", "cpu", conv.case))
    assert cpu[k] == before - 1
    mm = next(t for t in ts.tasks if t.case.workload == "matmul")
    gpu = pol.quota[pool_of(d[1])]
    cpu.clear()  # 'cpu' is done with its share: it may now take any task
    assert pol.place(mm, d, MODEL, 0.0) is not None
    had = gpu[kind(mm)]
    pol.placed(mm, d[0], MODEL.predict("cpu", "cpu", mm.case))  # a steal: it comes off gpu's share of that matmul kind
    assert gpu[kind(mm)] == had - 1


def test_heteroprio_gives_the_slow_device_what_it_is_least_slow_at():
    # 'cpu' runs matmul 1.2x and attention 10x faster than 'acc': acc should take matmuls, never attention
    m = Table({"cpu": {"matmul": 1.2e9, "attention": 10e9}, "acc": {"matmul": 1e9, "attention": 1e9}})
    ts = tasks.mixed(40, size="quick", workloads=("matmul", "attention"))
    d = devs("cpu", "acc", model=m)
    r = simulate(ts.tasks, d, policies.make("heteroprio"), m)
    on_acc = [ts.tasks[i].case.workload for i, name in r.where.items() if name == "acc"]
    assert on_acc and set(on_acc) == {"matmul"}
    times = bounds.time_table(ts.tasks, d, m)
    assert r.makespan <= 1.15 * bounds.lp_bound(ts.tasks, d, times)


def test_heteroprio_assign_fills_free_slots_only_and_explores_an_unmeasured_device():
    ts = tasks.mixed(8, size="quick", workloads=("matmul",))
    for t in ts.tasks:  # one task kind
        t.case = ts.tasks[0].case
    m = Table({"cpu": {"matmul": 1e9}})  # 'new' has no prediction
    d = devs("cpu", "new", model=m)
    pol = policies.make("heteroprio")
    pol.plan(ts.tasks, d, m)
    d[0].outstanding = 1
    pairs = pol.assign(ts.tasks, d, m, 0.0)
    per = {n: sum(1 for _, x in pairs if x.name == n) for n in ("cpu", "new")}
    assert per == {"cpu": pol.commit - 1, "new": 1}  # new: one task of the kind, until it is measured
    assert len({t.id for t, _ in pairs}) == len(pairs)
    assert [x.queue_end for x in d] == [0.0, 0.0]  # assign leaves the queues to place_task


def test_heteroprio_leaves_a_task_to_a_much_faster_device_that_would_finish_it_first():
    m = Table({"cpu": {"matmul": 10e9}, "acc": {"matmul": 1e9}})
    ts = tasks.mixed(1, size="quick", workloads=("matmul",))
    d = devs("cpu", "acc", model=m)
    pol = policies.make("heteroprio")
    pol.plan(ts.tasks, d, m)
    d[0].outstanding = 1  # cpu busy with one slot left: still the sooner finish
    assert pol.take(d[1], ts.tasks, d, m, 0.0) is None


def test_heteroprio_keeps_a_task_off_a_slower_device_whose_tasks_overran_their_predictions():
    """The guard on graphs: 'acc' (half cpu's speed) would finish the task first while cpu is busy, until its
    tasks have run twice as long as predicted; then cpu's queue wins and acc declines."""
    m = Table({"cpu": {"matmul": 2e9}, "acc": {"matmul": 1e9}})
    ts = tasks.mixed(2, size="quick", workloads=("matmul",))
    t = ts.tasks[0]
    d = devs("cpu", "acc", model=m)
    pol = policies.make("heteroprio")
    pol.plan(ts.tasks, d, m)
    on_cpu = m.predict("cpu", "cpu", t.case)
    d[0].queue_end, d[0].outstanding = 1.5 * on_cpu, 1  # cpu finishes it at 2.5x its time; acc at 2x
    assert pol.take(d[1], [t], d, m, 0.0) is t
    pol.placed(ts.tasks[1], d[1], m.predict("acc", "acc", ts.tasks[1].case))
    pol.ended(ts.tasks[1], d[1], 2 * m.predict("acc", "acc", ts.tasks[1].case))  # ran 2x its prediction
    pol.assign([], d, m, 0.0)  # a new pass
    slip = {"cpu": 0.0, "acc": pytest.approx(0.3)}  # the recent mean from 0 (error 0: a simulation's)
    assert pol.slips.value == slip and pol.take(d[1], [t], d, m, 0.0) is None  # acc: 2.6x, cpu 2.5x
    pol.ended(t, d[0], None)  # a time taken beside a core mate says nothing of the prediction
    assert pol.slips.value == slip


def test_lp_groups_bound_the_work_of_devices_that_share_cores():
    from hetero.scheduler.lp import area_allocation

    kinds = {"a": 10}
    pools = [(1, {"a": 1.0}), (1, {"a": 4.0}), (1, {"a": 2.0})]
    t, alloc = area_allocation(kinds, pools)
    assert math.isclose(t, 10 / (1 + 1 / 4 + 1 / 2), rel_tol=1e-6)  # three independent devices
    t2, alloc2 = area_allocation(kinds, pools, [([0, 1], 1.0)])  # 0 and 1 time-slice one core
    # together they do one core's work, best spent on 0 (4x faster): 1 runs nothing
    assert math.isclose(t2, 10 / (1 + 1 / 2), rel_tol=1e-6) and alloc2[1].get("a", 0.0) < 1e-6


def test_dmda_hands_a_task_to_another_pool_when_that_shortens_the_projected_makespan():
    ts = tasks.mixed(40, size="quick", workloads=("attention",))
    d = devs("cpu", "gpu")
    pol = policies.make("dmda")
    pol.plan(ts.tasks, d, MODEL)
    t = ts.tasks[0]
    pol.quota[pool_of(d[1])].pop(kind(t), None)  # attention's share: all on 'cpu'
    pol.begin(0.0)
    assert pol.place(t, d, MODEL, 0.0).name == "cpu"  # on plan: its share's device
    d[0].queue_end = 100.0  # 'cpu' overran its plan by far
    pol.begin(0.0)
    assert pol.place(t, d, MODEL, 0.0).name == "gpu"


def test_dmda_leaves_a_slow_device_idle_when_it_shares_a_fast_ones_core():
    # 'mate' is 20x slower than 'cpu' and computes on cpu's core; 'gpu' has its own
    m = Table(
        {
            "cpu": {"matmul": 1e9, "attention": 2e9, "conv2d": 1e9, "conv_transpose2d": 1e9},
            "gpu": {"matmul": 3e9, "attention": 1e9},
            "mate": {w: 0.05e9 for w in ("matmul", "attention", "conv2d", "conv_transpose2d")},
        }
    )
    ts = tasks.mixed(40, size="quick")
    pair = simulate(ts.tasks, devs("cpu", "gpu", model=m), policies.make("dmda"), m)

    def three():
        out = devs("cpu", "gpu", "mate", model=m)
        out[0].core_group = out[2].core_group = ("node", (0,))
        return out

    r = simulate(ts.tasks, three(), policies.make("dmda"), m)
    assert "mate" not in r.where.values()
    assert r.makespan <= 1.001 * pair.makespan
    quota = lp_quota(ts.tasks, three(), m)
    assert not any(quota[pool_of(three()[2])].values())


# 'mate' shares cpu's core and is 100x slower: dmda gives it nothing, so it always has a free slot and, with no
# lookahead and no Policy.wants, every pass would place every ready task again
MATE = Table(
    {
        "cpu": {"matmul": 1e9, "attention": 2e9, "conv2d": 1e9, "conv_transpose2d": 1e9},
        "gpu": {"matmul": 3e9, "attention": 1e9},
        "mate": {w: 0.01e9 for w in ("matmul", "attention", "conv2d", "conv_transpose2d")},
    }
)


def _with_mate(monkeypatch, lookahead, wants=True):
    """(makespan, placements, where) of dmda on mixed:40 over cpu, gpu and cpu's slow core-mate."""
    ts = tasks.mixed(40, size="quick")
    d = devs("cpu", "gpu", "mate", model=MATE)
    d[0].core_group = d[2].core_group = ("node", (0,))
    pol = policies.make("dmda")
    pol.lookahead = lookahead
    calls = []
    place = pol.place
    monkeypatch.setattr(pol, "place", lambda *a: calls.append(1) or place(*a))
    if not wants:
        monkeypatch.setattr(pol, "wants", lambda *a: True)
    # durations 10% off the predictions, so that dmda binds late (commit) as in a real run
    r = simulate(ts.tasks, d, pol, MATE, actual=lambda t, dev: 1.1 * MATE.predict(dev.backend, dev.device, t.case))
    return r.makespan, len(calls), r.where


def test_a_pass_stops_after_lookahead_held_placements(monkeypatch):
    (all_span, all_calls, _), (span8, calls8, _) = (
        _with_mate(monkeypatch, None, wants=False),
        _with_mate(monkeypatch, 8, wants=False),
    )
    assert calls8 < 0.75 * all_calls
    assert span8 <= 1.01 * all_span


def test_a_pass_ends_once_no_device_with_a_free_slot_wants_a_task(monkeypatch):
    # the mate wants nothing (no share, and whatever it took would end past the projected makespan on cpu's
    # core), so a pass ends after the held placement that follows a send: the same schedule, fewer placements
    span, calls, where = _with_mate(monkeypatch, 8, wants=False)
    span_w, calls_w, where_w = _with_mate(monkeypatch, 8)
    assert where_w == where and span_w == pytest.approx(span)
    assert calls_w < 0.6 * calls
    d = devs("cpu", "gpu", "mate", model=MATE)
    pol = policies.make("dmda")
    pol.plan(tasks.mixed(40, size="quick").tasks, d, MATE)
    pol.shares.projected(first_free(d), 0.0)
    assert pol.wants(d[2], d, MATE, 0.0)  # cores of its own: the LP gave it a share
    assert pol.wants(d[0], d, MATE, 0.0)  # a device with a share left wants its tasks


def test_the_bound_counts_devices_that_share_cores_as_one():
    ts = tasks.mixed(4, size="quick", workloads=("matmul",))
    for t in ts.tasks:
        t.case = ts.tasks[0].case
    m = Table({"a": {"matmul": 4.0}, "b": {"matmul": 1.0}})  # alone: a takes f per task, b 4f
    f = tasks.get("matmul").flops(ts.tasks[0].case.p) / 4.0

    def run(events):
        class Run:
            policy, taskset, mix, retries, checked, wrong = "x", ts, "a+b", 0, 0, []
            dead, alive_start, alive_end = [], ["a", "b"], ["a", "b"]
            overhead_s = overhead_cpu_s = submit_s = 0.0
            makespan = max(e["end"] for e in events)

        Run.events = events
        d = devs("a", "b", model=m)
        d[0].core_group = d[1].core_group = ("node", (0,))
        return summary.summarize([Run], d, m)[0]

    # a ran all four alone; b, on a's core, could not have helped: the bound is a's 4f, not the 3.2f of an LP
    # that gives b a fifth of the work on a core of its own
    row = run([{"task": i, "device": "a", "start": i * f, "end": (i + 1) * f} for i in range(4)])
    assert row["lp_bound_s"] == pytest.approx(4 * f) and row["gap"] == pytest.approx(1.0)
    assert row["lp_bound_own_cores_s"] == pytest.approx(4 / (1 / f + 1 / (4 * f)))
    # a ran two at half speed (2f each, f alone) beside one of b's (4f, 2f alone), then one alone: counted at
    # their alone times the bound is a's 4f; at their wall-clock times (a: 5f/3 a task) it would be 6.7f, above
    # the 5f makespan
    row = run(
        [
            {"task": 0, "device": "a", "start": 0.0, "end": 2 * f},
            {"task": 1, "device": "a", "start": 2 * f, "end": 4 * f},
            {"task": 2, "device": "b", "start": 0.0, "end": 4 * f},
            {"task": 3, "device": "a", "start": 4 * f, "end": 5 * f},
        ]
    )
    assert row["lp_bound_s"] == pytest.approx(4 * f) and row["lp_bound_s"] <= 5 * f


def test_dmda_on_a_graph_counts_a_core_mates_queue_in_a_shared_devices_finish():
    # 'mate' (20x slower than cpu, on cpu's core) is idle; cpu's queue runs 1 s more. Plain earliest finish would
    # send the matmul to the idle mate, which would then slow cpu's queue; counted as sharing, mate finishes last.
    m = Table({"cpu": {"matmul": 1e9}, "gpu": {"matmul": 0.2e9}, "mate": {"matmul": 0.05e9}})
    ts = tasks.transformer(1, size="quick")
    t = next(x for x in ts.tasks if x.case.workload == "matmul")
    p = {n: m.predict(n, n, t.case) for n in ("cpu", "gpu", "mate")}
    d = devs("cpu", "gpu", "mate", model=m)
    pol = policies.make("dmda")
    pol.plan(ts.tasks, d, m)
    d[0].queue_end, d[1].queue_end = 1.0, 1.0 + 2 * p["mate"]  # gpu would end it after mate alone does
    assert pol.place(t, d, m, 0.0).name == "mate"  # cores of its own: mate is earliest
    d[0].core_group = d[2].core_group = ("node", (0,))
    assert pol.place(t, d, m, 0.0).name == "cpu"  # it would end after cpu's 1 s queue: cpu
    assert 1.0 + p["cpu"] < 1.0 + p["mate"] < d[1].queue_end + p["gpu"]


def test_dmda_cached_predictions_follow_the_model_after_a_task_ends(tmp_path):
    # dmda keeps the model's predictions until the device ends a task of the same workload and dtype; the one
    # that ended changes its own, and the FLOP fit that predicts the same workload's unmeasured shapes
    from hetero.scheduler.perfmodel import PerfModel

    ts = tasks.mixed(40, size="full", inputs=False)
    by_kind = {kind(t): t for t in ts.tasks}
    mm = [t for t in by_kind.values() if t.case.workload == "matmul"]
    other = [t for t in by_kind.values() if t.case.workload != "matmul"]
    assert len(mm) >= 3 and other
    m = PerfModel(tmp_path / "pm.json")
    dev = DeviceState("cpu", "cpu", "cpu")
    for t in mm[:2] + other:  # mm[2:] unmeasured: the fit over mm[0] and mm[1] predicts them
        for s in (1.0, 1.0, 1.0):
            m.add("cpu", "cpu", t.case, s * tasks.get(t.case.workload).flops(t.case.p) / 1e10)
    pol = policies.make("dmda")
    pol.plan(ts.tasks, [dev], m)

    def agree():
        for t in by_kind.values():
            assert pol._predict(m, t, dev, kind(t)) == pytest.approx(m.predict("cpu", "cpu", t.case))

    agree()
    for _ in range(3):
        m.add("cpu", "cpu", mm[0].case, 5.0)  # mm[0] got much slower: its mean and the fit move
        pol.ended(mm[0], dev, 5.0)
    assert m.predict("cpu", "cpu", mm[2].case) != pytest.approx(tasks.get("matmul").flops(mm[2].case.p) / 1e10)
    agree()
