"""Streams on the simulator: queueing theory's M/M/c, and the stream helpers. No Ray."""

import numpy as np
import pytest

from hetero.errors import HeteroError
from hetero.scheduler import policies, queueing, streams
from hetero.scheduler import tasks as tasksets
from hetero.scheduler.device import DeviceState
from hetero.scheduler.simulate import simulate


class Fixed:
    """Every task predicted to take `s` seconds on every device."""

    def __init__(self, s):
        self.s = s

    def predict(self, backend, device, case):
        return self.s


@pytest.mark.parametrize("load", [0.5, 0.8, 0.95])
def test_a_stream_on_identical_devices_is_fcfs_mmc_request_by_request(load):
    """1e5 Poisson requests with exponential service times on 4 identical devices, placed by eager: each
    request waits exactly what first-come-first-served M/M/4 gives it on the same draws."""
    n, c, mu = 100_000, 4, 1.0
    ts = tasksets.mixed(n, size="quick", workloads=("matmul",), inputs=False)
    arrival = streams.arrival_times("poisson", n, load * c * mu, seed=1)
    service = np.random.default_rng(2).exponential(1 / mu, n)
    stream = streams.Stream("mm", ts.tasks, arrival, [[t.id] for t in ts.tasks])
    devs = [DeviceState(f"d{i}", "x", "x") for i in range(c)]
    r = simulate(
        ts.tasks,
        devs,
        policies.make("eager"),
        Fixed(1 / mu),
        actual=lambda t, d: service[t.id],
        arrivals=stream.arrivals(),
    )
    waits = np.array([r.start[t.id] for t in ts.tasks]) - arrival
    assert np.allclose(waits, queueing.fcfs_waits(arrival, service, c), atol=1e-9)
    assert streams.latency(stream, r.start, r.end)["completed"] == n


@pytest.mark.parametrize("load", [0.5, 0.8, 0.95])
def test_fcfs_mmc_waits_match_erlang_c(load):
    """The recursion the simulator reproduces gives Erlang C's mean wait within 2% and its p99 within 5% (2e7
    customers: near saturation a mean over fewer is too noisy for 2%)."""
    c, mu = 4, 1.0
    lam = load * c * mu
    w = queueing.mmc_waits(20_000_000, lam, mu, c, seed=0)
    assert w.mean() == pytest.approx(queueing.mean_wait(c, lam, mu), rel=0.02)
    assert np.percentile(w, 99) == pytest.approx(queueing.wait_quantile(c, lam, mu, 0.99), rel=0.05)


def test_erlang_c_known_values_and_refusal():
    assert queueing.erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = rho
    assert queueing.erlang_c(2, 1.0) == pytest.approx(1 / 3)
    with pytest.raises(HeteroError, match="below 1"):
        queueing.erlang_c(2, 2.0)


def test_arrivals_poisson_constant_and_trace(tmp_path):
    p = streams.arrival_times("poisson", 200_000, 50.0, seed=3)
    assert np.all(np.diff(p) > 0) and np.diff(p).mean() == pytest.approx(1 / 50, rel=0.02)
    assert np.allclose(streams.arrival_times("constant", 4, 2.0), [0.0, 0.5, 1.0, 1.5])
    with pytest.raises(HeteroError, match="--arrivals"):
        streams.arrival_times("bursty", 4, 2.0)
    ts, members = streams.requests("gan", 3, size="quick")
    assert len(members) == 3 and all(len(m) == 6 for m in members)
    st = streams.Stream("gan:3", ts.tasks, np.array([0.0, 0.1, 0.3]), members)
    streams.write_trace_file(tmp_path / "t.csv", st)
    assert [round(t, 6) for t, _ in streams.read_trace(tmp_path / "t.csv")] == [0.0, 0.1, 0.3]
    (tmp_path / "bad.csv").write_text("when,what\n1,x\n")
    with pytest.raises(HeteroError, match="time,kind"):
        streams.read_trace(tmp_path / "bad.csv")


def test_load_is_a_fraction_of_the_capacity_the_model_predicts():
    """Two devices each 1 s a request: capacity 2 requests a second; load 0.5 arrives at 1 a second."""
    devs = [DeviceState("a", "x", "x"), DeviceState("b", "x", "x")]
    st, rate = streams.make("mixed", 1000, devs, Fixed(1.0), load=0.5, arrivals="constant", size="quick")
    assert rate == pytest.approx(1.0) and st.arrival[1] == pytest.approx(1.0)
    r = simulate(st.tasks, devs, policies.make("dmda"), Fixed(1.0), arrivals=st.arrivals())
    stats = streams.latency(st, r.start, r.end, slo=1.5)
    assert stats["p99_s"] == pytest.approx(1.0) and stats["over_slo"] == 0 and stats["mean_wait_s"] == 0
    assert streams.knee([dict(load=0.5, p99_s=1.0), dict(load=0.9, p99_s=2.0)], slo=1.5) == 0.5


def test_mm1_latency_quantile_and_the_fewest_servers_for_an_slo():
    # M/M/1: latency ~ Exp(mu - lam), so its p99 is ln(100) / (mu - lam)
    assert queueing.latency_quantile(1, 0.5, 1.0, 0.99) == pytest.approx(np.log(100) / 0.5, rel=1e-6)
    c, p99 = queueing.servers_for(lam=30.0, mu=1.0, slo=6.0)
    assert p99 <= 6.0 < queueing.latency_quantile(c - 1, 30.0, 1.0, 0.99)
    with pytest.raises(HeteroError, match="no fleet meets it"):
        queueing.servers_for(lam=1.0, mu=1.0, slo=1.0)


def test_plan_serve_gives_the_flop_fleet_and_the_latency_fleet(capsys):
    from bench.plan import cli

    argv = [
        "serve",
        "--params",
        "175e9",
        "--users",
        "50e6",
        "--requests-per-user",
        "10",
        "--per",
        "day",
        "--words-per-answer",
        "400",
        "--tokens-per-word",
        "1.3333333",
        "--device",
        "a100",
        "--utilization",
        "0.213",
        "--slo-p99",
        "14",
    ]
    assert cli(argv) == 0
    out = capsys.readouterr().out
    assert "16256 x a100" in out and "M/M/c queue, p99 latency" in out and "16259 x a100" in out


def test_on_a_stream_dmda_places_by_earliest_finish_without_the_batch_lp_shares():
    """LP shares planned over every request of a stream would keep a device to its share of requests yet to
    arrive while another idles; on a stream dmda takes none."""
    devs = [DeviceState("a", "x", "x"), DeviceState("b", "y", "y")]
    st, _ = streams.make("mixed", 200, devs, Fixed(1.0), load=0.5, size="quick")
    pol = policies.make("dmda")
    r = simulate(st.tasks, devs, pol, Fixed(1.0), arrivals=st.arrivals())
    assert pol.streaming and pol.shares is None and len(r.end) == 200


def test_a_simulated_stream_skips_a_policy_too_slow_for_its_size_with_a_note():
    """heteroprio (and auto, which runs it on a stream) looks at every ready task for each free device: past its
    max_sim_tasks it is skipped, saying so, while the other policies run."""
    devs = [DeviceState("a", "x", "x"), DeviceState("b", "y", "y")]
    limit = policies.make("heteroprio").max_sim_tasks
    notes = []
    rows = streams.simulated(
        "mixed", limit + 1, "a+b", devs, Fixed(1e-3), ["auto", "round-robin"], [0.5], size="quick", note=notes.append
    )
    assert [r["policy"] for r in rows] == ["round-robin"]
    assert any("auto: skipped" in n and str(limit) in n for n in notes)


def test_the_committed_stream_run_replays_within_15_percent_below_its_knees(tmp_path):
    """Every row of the committed stream run at a load below its (mix, policy)'s knee (the highest load whose
    measured p99 met the SLO): the replay's p99 within 15% of the measured. Above the knee a queue grows with
    each request, and its p99 is decided by a few placements."""
    import shutil
    from pathlib import Path

    import pandas as pd

    from bench.simulate import cli

    name = "stream-numba-opencl-fpga-zen4"
    shutil.copytree(Path(__file__).resolve().parents[2] / "results" / name, tmp_path / name)
    assert cli(["--replay", str(tmp_path / name), "--out", str(tmp_path), "--name", "replay"]) == 0
    rows = pd.read_csv(tmp_path / "replay" / "replay.csv").merge(
        pd.read_csv(tmp_path / name / "stream.csv")[["mix", "policy", "load", "slo_s"]], on=["mix", "policy", "load"]
    )
    met = rows[rows.real_p99_s <= rows.slo_s]
    knee = met.groupby(["mix", "policy"]).load.max().rename("knee")
    below = rows.join(knee, on=["mix", "policy"]).query("load < knee")
    assert len(below) >= 5 and (below.p99_err_pct.abs() <= 15).all(), below.to_string()
