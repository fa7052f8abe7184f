"""python -m bench.report: tables and plots from everything under results/, and results/README.md from them.

Kernel runs (bench.run: <run>/bench.csv) give a table per run (ranges over shapes) and a roofline per device;
schedule runs (bench.schedule: schedule.csv, trace.json) a table per run (mixes and policies) and a Gantt chart of
dmda per mix of several devices; simulations (bench.simulate: simulate.csv) tables whose every figure is modeled.
The terminal also gets the speedup table per (run, workload, dtype), shape by shape.

    python -m bench.report                       # print tables; regenerate results/README.md and results/plots/
    python -m bench.report --no-write            # print only
A trailing * marks a modeled (not measured) figure.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from bench.cli import Parser, main
from hetero.errors import HeteroError
from hetero.plots import unavailable as plots_unavailable
from hetero.result_tables import (
    corrupt_meta,
    load_bench,
    load_csvs,
    run_machine,
    run_summary,
    schedule_summary,
    shared_cores_note,
    simulation_tables,
    speedup_tables,
    to_markdown,
)
from hetero.results import atomic_write


def parser() -> Parser:
    p = Parser(prog="python -m bench.report", description=__doc__.split("\n\n")[0])
    p.add_argument("--results", default="results", help="folder holding <run>/bench.csv (default results/)")
    p.add_argument("--no-write", action="store_true", help="print tables; write no README or plots")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    return p


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


def _plots(df, results: Path) -> list[tuple[str, str]]:
    """[(run, markdown image line)]: a roofline per (run, device), each shape a point."""
    from hetero.plots import roofline

    out_dir = results / "plots"
    out_dir.mkdir(parents=True, exist_ok=True)
    images = []
    for (run, device), g in df.groupby(["run", "device"], sort=False):
        if (g.status == "ok").any():
            p = roofline(g, out_dir / f"{_slug(run)}-roofline-{_slug(device)}.png", f"{run}: {device}")
            images.append((run, f"![roofline {device}](plots/{p.name})"))
    return images


def _gantts(results: Path, runs: list[str], policy: str = "dmda") -> list[tuple[str, str]]:
    """[(run, markdown image line)]: the `policy` schedule of each (task set, mix of several devices) of each
    schedule run."""
    from hetero.plots import gantt
    from hetero.scheduler.trace import read_trace

    images = []
    for run in runs:
        try:
            traces = read_trace(results / run / "trace.json")
        except HeteroError as exc:
            print(f"skipped: {exc}", file=sys.stderr)
            continue
        for (taskset, pol, mix), events in traces.items():
            if pol == policy and events and "+" in mix:
                name = f"{_slug(run)}-gantt-{_slug(taskset)}-{_slug(mix)}.png"
                (results / "plots").mkdir(parents=True, exist_ok=True)
                gantt(events, results / "plots" / name, f"{run}: {taskset} on {mix}, {policy}")
                images.append((run, f"![gantt {taskset} {mix}](plots/{name})"))
    return images


def _latency(streams, results: Path) -> list[tuple[str, str]]:
    """[(run, markdown image line)]: latency against load per stream run and task set."""
    from hetero.plots import latency_vs_load

    (results / "plots").mkdir(parents=True, exist_ok=True)
    images = []
    for (run, taskset), g in streams.groupby(["run", "taskset"], sort=False):
        p = latency_vs_load(g, results / "plots" / f"{_slug(run)}-latency-{_slug(taskset)}.png", f"{run}: {taskset}")
        images.append((run, f"![latency against load {taskset}](plots/{p.name})"))
    return images


def _stream_section(results: Path, streams, run: str, images: list) -> list[str]:
    """A stream run's rows and each mix and policy's knee (the highest load whose p99 meets the SLO)."""
    from hetero.scheduler.streams import knee

    g = streams[streams.run == run]
    cols = ["taskset", "mix", "policy", "load", "rate_per_s", "p50_s", "p99_s", "mean_wait_s", "over_slo", "timing"]
    md = [
        f"## {run} (stream)",
        "",
        f"Machine: {run_machine(results, run)}",
        "",
        to_markdown(g[[c for c in cols if c in g]].set_index("taskset").round(4).astype(object).fillna("-")),
        "",
    ]
    slo = g["slo_s"].dropna()
    if len(slo):
        for (ts, mix, pol), rows in g.groupby(["taskset", "mix", "policy"], sort=False):
            k = knee(rows.to_dict("records"), float(slo.iloc[0]))
            md.append(f"- knee, {ts} on {mix}, {pol}: " + (f"load {k:g}" if k is not None else "no load meets it"))
        md.append("")
    return md + images + ([""] if images else [])


def _section(title: str, machine: str, legend: str, tables: list, images: list) -> list[str]:
    md = [f"## {title}", "", f"Machine: {machine}", ""] + ([legend, ""] if legend else [])
    for _, table in tables:
        md += [to_markdown(table), ""]
    return md + ([" ".join(images), ""] if images else [])


def _by_policy(table):
    """A schedule summary as one row per (task set, mix) and a column per policy, each cell 'makespan (gap)'."""
    table = table.reset_index()
    num = lambda v, f: f.format(v) if isinstance(v, (int, float)) else str(v)  # noqa: E731  ('-': not known)
    cell = [f"{num(m, '{:#.3g}')} ({num(g, '{:.2f}')})" for m, g in zip(table.makespan_s, table.gap)]
    wide = table.assign(cell=cell).pivot(index=["taskset", "mix"], columns="policy", values="cell")
    order = list(dict.fromkeys(table.policy))
    keys = list(dict.fromkeys(zip(table.taskset, table.mix)))
    return (
        wide.reindex(index=keys, columns=order).fillna("-").reset_index().rename_axis(columns=None).set_index("taskset")
    )


def _readme(results: Path, df, sched, sims, images, streams=None) -> str:
    md = [
        "# Results",
        "",
        "Generated by `python -m bench.report` from the run folders here; do not edit by hand."
        + (
            " What each run is, and the runs that left: [HISTORY.md](HISTORY.md)."
            if (results / "HISTORY.md").exists()
            else ""
        ),
        "Kernel runs: per (workload, dtype, backend) the range over its shapes; `*` = modeled (the FPGA model), "
        "otherwise measured (bench.csv's `timing` column says on which clock). Each run's `meta.json` names the "
        "machine.",
        "",
    ]
    pics = lambda run: [line for r, line in images if r == run]  # noqa: E731
    summaries = run_summary(df)
    for run in dict.fromkeys(df.run) if not df.empty else ():
        md += _section(
            run, run_machine(results, run), "", [t for t in summaries if t[0].startswith(f"{run}:")], pics(run)
        )
    schedules = schedule_summary(sched)
    for run in dict.fromkeys(sched.run) if not sched.empty else ():
        shared = shared_cores_note(sched, run)
        legend = (
            "Wall-clock makespans of real runs, the row of each policy its median-makespan run; gap = makespan"
            " / max(LP area bound, critical path)" + (f"; {shared}" if shared else "") + "."
        )
        md += _section(
            f"{run} (bench.schedule)",
            run_machine(results, run),
            legend + " Each cell: makespan in s (gap); every column of each row: the run's schedule.csv.",
            [(title, _by_policy(t)) for title, t in schedules if title.startswith(f"{run}:")],
            pics(run),
        )
    for run in dict.fromkeys(streams.run) if streams is not None and not streams.empty else ():
        md += _stream_section(results, streams, run, pics(run))
    for title, table in sims:
        run, rest = title.split(": ", 1)
        md += [
            f"## {run} (bench.simulate)",
            "",
            f"All times modeled (*) by the simulator; {rest}.",
            "",
            to_markdown(table),
            "",
        ]
    return "\n".join(md)


def _run(argv=None) -> int:
    args = parser().parse_args(argv)
    results = Path(args.results)
    if not results.is_dir():
        raise HeteroError(f"no results folder {results}; run python -m bench.run first or pass --results")
    df, notes = load_bench(results)
    sched, n2 = load_csvs(results, "schedule.csv")
    sim, n3 = load_csvs(results, "simulate.csv")
    streams, n4 = load_csvs(results, "stream.csv")
    runs = dict.fromkeys(
        list(df.get("run", [])) + list(sched.get("run", [])) + list(sim.get("run", [])) + list(streams.get("run", []))
    )
    notes += n2 + n3 + n4 + corrupt_meta(results, runs)
    for n in notes:
        print(n, file=sys.stderr)
    if df.empty and sched.empty and sim.empty and streams.empty:
        raise HeteroError(f"no readable <run>/bench.csv, schedule.csv, stream.csv or simulate.csv under {results}")
    sims = simulation_tables(sim)
    for title, table in speedup_tables(df) + schedule_summary(sched) + sims:
        print(f"\n{title}\n{table.to_string()}")
    if notes:  # a README without the corrupt runs would drop their results without a word
        raise HeteroError(
            f"{len(notes)} corrupt result file(s), named above; tables above are without them"
            + ("" if args.no_write else f"; {results / 'README.md'} not rewritten")
        )
    if args.no_write:
        return 0
    missing = None if args.no_plots else plots_unavailable()
    if missing:
        print(f"note: plots skipped: {missing}", file=sys.stderr)
    images = (
        []
        if args.no_plots or missing
        else (_plots(df, results) if not df.empty else [])
        + _gantts(results, list(dict.fromkeys(sched.run)) if not sched.empty else [])
        + (_latency(streams, results) if not streams.empty else [])
    )
    if images:
        _prune_plots(results / "plots", images)
    atomic_write(results / "README.md", _readme(results, df, sched, sims, images, streams))
    print(f"\nwrote {results / 'README.md'}" + (f" and {len(images)} plots in {results / 'plots'}" if images else ""))
    return 0


def _prune_plots(folder: Path, images: list) -> None:
    """Remove the PNGs of runs that left results/: plots/ shows the current runs only (git keeps the rest)."""
    drawn = {line.split("](plots/", 1)[1].rstrip(")") for _, line in images}
    for png in folder.glob("*.png"):
        if png.name not in drawn:
            png.unlink()


def cli(argv=None) -> int:
    return main(_run, argv, prog="bench.report")


if __name__ == "__main__":
    sys.exit(cli())
