"""bench.report over result folders: tables, README regeneration, corrupt files named (exit 2, no README)."""

import pytest

from bench.report import cli
from hetero.backends import registry
from hetero.results import metadata, write_metadata, write_rows
from hetero.runner import COLUMNS, RunConfig, run
from hetero.workloads import get


@pytest.fixture
def results(tmp_path):
    cases = get("matmul").preset_cases("quick")
    backends = [registry.get("numpy"), registry.get("null")]
    rows = run(cases, backends, RunConfig(budget_s=0.01, warmup_s=0))
    write_rows(tmp_path / "cpu-run" / "bench.csv", rows, COLUMNS)
    write_metadata(tmp_path / "cpu-run" / "meta.json", metadata({}, ["test"]))
    return tmp_path


def test_report_writes_readme_with_tables_and_modeled_marks(results, capsys):
    pytest.importorskip("matplotlib")
    assert cli(["--results", str(results)]) == 0
    readme = (results / "README.md").read_text()
    assert "## cpu-run" in readme and "Machine:" in readme and "cores" in readme
    assert "| numpy |" in readme and "*" in readme.split("| null |")[1].splitlines()[0]  # null is modeled
    assert readme.count("| matmul | float32 |") == 2  # one row per backend, its shapes as a range
    assert list((results / "plots").glob("*.png"))
    assert "GFLOP/s (speedup vs numpy)" in capsys.readouterr().out


def test_report_never_divides_a_model_by_a_stopwatch(results, capsys):
    """A file written before the like-with-like rule holds a modeled row's speedup over a measured baseline; the
    report computes the ratios again and leaves that cell without one."""
    from hetero.results import read_rows

    path = results / "cpu-run" / "bench.csv"
    df = read_rows(path)
    df.loc[df.backend == "null", "speedup"] = 2.69
    df.to_csv(path, index=False)
    assert cli(["--results", str(results), "--no-write"]) == 0
    null = [line for line in capsys.readouterr().out.splitlines() if line.startswith("null")]
    assert null and all("*" in line and "x)" not in line for line in null)


def test_corrupt_file_is_named_the_rest_printed_and_exit_2(results, capsys):
    (results / "broken").mkdir()
    (results / "broken" / "bench.csv").write_text("workload,shape\nmatmul\n")
    assert cli(["--results", str(results)]) == 2  # a README without the broken run would drop it silently
    out = capsys.readouterr()
    assert "corrupt results file" in out.err and "GFLOP/s (speedup vs numpy)" in out.out
    assert not (results / "README.md").exists()


def test_missing_folder_is_exit_2(tmp_path, capsys):
    assert cli(["--results", str(tmp_path / "nope")]) == 2
    assert "no results folder" in capsys.readouterr().err


def _schedule_run(folder):
    """A bench.schedule folder from hand-made runs: two one-device mixes and their union, dmda and single."""
    from hetero.results import atomic_write
    from hetero.scheduler import summary, tasks, trace
    from hetero.scheduler.runtime import RunResult

    ts = tasks.mixed(4, size="quick", inputs=False)
    rows, results = [], []
    for mix, span in (("a", 4.0), ("b", 3.0), ("a+b", 2.0)):
        devs = mix.split("+")
        for policy in ("single", "dmda"):
            ev = [
                {
                    "task": t.id,
                    "label": t.label,
                    "workload": t.case.workload,
                    "shape": t.case.shape,
                    "device": devs[i % len(devs)],
                    "sent": 100.0,
                    "start": 100.0 + i * 0.5,
                    "end": 100.4 + i * 0.5,
                    "kernel_s": 0.4,
                    "flops": t.flops,
                }
                for i, t in enumerate(ts.tasks)
            ]
            results.append(RunResult(policy, ts, mix, ev, t0=100.0, t1=100.0 + span))
            rows.append(
                dict(
                    taskset=ts.name,
                    mix=mix,
                    policy=policy,
                    devices=",".join(devs),
                    tasks=4,
                    makespan_s=span * (1.5 if policy == "single" else 1),
                    tasks_per_s=4 / span,
                    gflops=1.0,
                    speedup_vs_single=1.5 if policy == "dmda" else 1.0,
                    speedup_vs_round_robin=None,
                    bound_s=span,
                    gap=1.0,
                    overhead_ms_per_task=0.3,
                    utilization="a=0.5",
                    task_counts="a=4",
                )
            )
    write_rows(folder / "schedule.csv", rows, summary.COLUMNS)
    atomic_write(folder / "trace.json", trace.chrome_trace(results))
    write_metadata(folder / "meta.json", metadata({}, ["test"]))


def test_report_has_device_mix_tables_gantt_and_simulations(results, capsys):
    pytest.importorskip("matplotlib")
    from bench.simulate import cli as simulate

    _schedule_run(results / "sched")
    assert simulate(["--mix", "2xu250,cpu", "--tasks", "mixed:50", "--out", str(results), "--name", "sim"]) == 0
    (results / "plots").mkdir(exist_ok=True)
    (results / "plots" / "gone-gantt-mixed-4-a-b.png").write_bytes(b"a plot of a run no longer in results/")
    assert cli(["--results", str(results)]) == 0
    assert not (results / "plots" / "gone-gantt-mixed-4-a-b.png").exists()  # plots show the current runs only
    readme = (results / "README.md").read_text()
    # one table per schedule run, a row per (task set, mix), a column per policy: a one-device mix has only dmda
    rows = {line.split(" | ")[1]: line for line in readme.splitlines() if line.startswith("| mixed:4 |")}
    assert set(rows) == {"a", "b", "a+b"} and rows["a"].endswith("| - |")
    assert " 2.00 (" in rows["a+b"] and "-" not in rows["a+b"].replace("a+b", "")
    printed = [line.split() for line in capsys.readouterr().out.splitlines() if "a+b" in line and "dmda" in line]
    assert printed and printed[0][3:5] == ["2.0", "1.5"]  # makespan, vs the best one-device mix: 3.0 / 2.0
    assert "## sched (bench.schedule)" in readme and "gantt-mixed-4-a-b.png" in readme
    assert (results / "plots" / "sched-gantt-mixed-4-a-b.png").stat().st_size > 1000
    assert "## sim (bench.simulate)" in readme and "modeled" in readme.split("## sim (bench.simulate)")[1]
