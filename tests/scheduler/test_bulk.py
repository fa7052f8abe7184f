"""The stream simulator over arrays (hetero.scheduler.bulk) against the general one (simulate.simulate): the same
start, end and device for every request, float for float. No Ray."""

import numpy as np
import pytest

from hetero.scheduler import bulk, policies, streams
from hetero.scheduler import tasks as tasksets
from hetero.scheduler.device import DeviceState
from hetero.scheduler.simulate import simulate
from hetero.workloads import get

SPEED = {"gpu": 4e9, "fpga": 1e9, "cpu": 2e8}  # FLOP/s per backend


class Table:
    """A task's FLOPs over its backend's speed; `missing`: a backend with no prediction."""

    def __init__(self, missing=()):
        self.missing = missing

    def predict(self, backend, device, case):
        return None if backend in self.missing else get(case.workload).flops(case.p) / SPEED[backend] + 1e-4


def mix(gpus=3, fpgas=2, cpus=1, core_group=None):
    """Three pools: GPUs with a transfer link and a call overhead, FPGAs that run two workloads, CPUs."""
    return (
        [DeviceState(f"gpu.{i}", "gpu", "g", 1e-4, 1e9, overhead=2e-4) for i in range(gpus)]
        + [DeviceState(f"fpga.{i}", "fpga", "f", 5e-4, 2e8, frozenset({"matmul", "conv2d"})) for i in range(fpgas)]
        + [DeviceState(f"cpu.{i}", "cpu", "c", core_group=core_group) for i in range(cpus)]
    )


def general(st, devs, name, model):
    """(start, end, device index) per request from simulate.simulate."""
    r = simulate(st.tasks, devs, policies.make(name), model, arrivals=st.arrivals())
    index = {d.name: i for i, d in enumerate(devs)}
    n = st.requests
    return np.array([r.start[i] for i in range(n)]), np.array([r.end[i] for i in range(n)]), r, index


@pytest.mark.parametrize("name", ["dmda"])
@pytest.mark.parametrize("arrivals,load", [("poisson", 0.6), ("poisson", 0.97), ("constant", 0.9)])
def test_bulk_gives_the_general_simulators_times_and_devices(name, arrivals, load):
    devs, model = mix(), Table()
    st, _ = streams.make("mixed", 1500, devs, model, load, arrivals, seed=2, size="quick")
    pol = policies.make(name)
    assert bulk.eligible(st, devs, pol)
    start, end, where = bulk.run_stream(st, devs, pol, model)
    s, e, r, index = general(st, devs, name, model)
    assert np.array_equal(start, s) and np.array_equal(end, e)
    assert [index[r.where[i]] for i in range(st.requests)] == where.tolist()
    assert streams.latency(st, start, end, slo=0.01) == streams.latency(st, r.start, r.end, slo=0.01)
    assert e.max() > st.arrival[-1] and (s > st.arrival).any()  # queues formed: the check has teeth


def test_requests_arriving_together_are_placed_highest_rank_first_in_both():
    devs, model = mix(gpus=2, fpgas=1), Table()
    dr = tasksets.draw(600, seed=4, size="quick")
    arrival = np.round(np.cumsum(np.random.default_rng(5).exponential(2e-4, 600)), 3)  # many ties
    st = streams.Stream("mixed:600", None, arrival, draw=dr)
    start, end, where = bulk.run_stream(st, devs, policies.make("dmda"), model)
    s, e, r, index = general(st, devs, "dmda", model)
    assert (np.diff(arrival) == 0).sum() > 100
    assert np.array_equal(start, s) and np.array_equal(end, e)


def test_what_bulk_leaves_to_the_general_simulator():
    devs, model = mix(), Table()
    st, _ = streams.make("mixed", 50, devs, model, 0.5, size="quick")
    assert not bulk.eligible(st, devs, policies.make("eager"))
    assert not bulk.eligible(st, devs, policies.make("auto"))  # heteroprio on a stream
    assert not bulk.eligible(st, mix(core_group="node0"), policies.make("dmda"))
    graph, _ = streams.make("gan", 5, devs, model, 0.5, size="quick")
    assert not bulk.eligible(graph, devs, policies.make("dmda"))
    # a pool with no prediction: dmda explores it first, which only the general simulator does
    assert bulk.run_stream(st, devs, policies.make("dmda"), Table(missing=("fpga",))) is None
