"""python -m bench.report: tables and plots from everything under results/, and results/README.md from them.

Kernel runs (bench.run: <run>/bench.csv) give speedup tables, peer ratios, speedup bars and rooflines; schedule
runs (bench.schedule: schedule.csv, trace.json) give device-mix and policy tables and a Gantt chart per mix;
simulations (bench.simulate: simulate.csv) give tables whose every figure is modeled.

    python -m bench.report                       # print tables; regenerate results/README.md and results/plots/
    python -m bench.report --no-write            # print only
Cells are GFLOP/s with the speedup over the run's baseline; a trailing * marks a modeled (not measured) figure.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

from bench.cli import Parser, main
from hetero.errors import HeteroError
from hetero.report import (corrupt_meta, load_bench, load_csvs, mix_tables, peer_ratios, policy_tables,
                           run_machine, simulation_tables, speedup_tables, to_markdown)
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
    """[(run, markdown image line)]: speedup bars per (run, workload, dtype), a roofline per (run, device)."""
    from hetero.plots import roofline, speedup_bars

    out_dir = results / "plots"
    out_dir.mkdir(parents=True, exist_ok=True)
    images = []
    for (run, workload, dtype), g in df.groupby(["run", "workload", "dtype"], sort=False):
        if (g.status == "ok").any():
            p = speedup_bars(g, out_dir / f"{_slug(run)}-{workload}-{dtype}.png", f"{run}: {workload} ({dtype})")
            images.append((run, f"![{workload} {dtype}](plots/{p.name})"))
    for (run, device), g in df.groupby(["run", "device"], sort=False):
        if (g.status == "ok").any():
            p = roofline(g, out_dir / f"{_slug(run)}-roofline-{_slug(device)}.png", f"{run}: {device}")
            images.append((run, f"![roofline {device}](plots/{p.name})"))
    return images


def _gantts(results: Path, runs: list[str], policy: str = "dmda") -> list[tuple[str, str]]:
    """[(run, markdown image line)]: the `policy` schedule of each (task set, mix) of each schedule run."""
    from hetero.plots import gantt
    from hetero.scheduler.report import read_trace

    images = []
    for run in runs:
        try:
            traces = read_trace(results / run / "trace.json")
        except HeteroError as exc:
            print(f"skipped: {exc}", file=sys.stderr)
            continue
        for (taskset, pol, mix), events in traces.items():
            if pol == policy and events:
                name = f"{_slug(run)}-gantt-{_slug(taskset)}-{_slug(mix)}.png"
                gantt(events, results / "plots" / name, f"{run}: {taskset} on {mix}, {policy}")
                images.append((run, f"![gantt {taskset} {mix}](plots/{name})"))
    return images


def _run(argv=None) -> int:
    args = parser().parse_args(argv)
    results = Path(args.results)
    if not results.is_dir():
        raise HeteroError(f"no results folder {results}; run python -m bench.run first or pass --results")
    df, notes = load_bench(results)
    sched, n2 = load_csvs(results, "schedule.csv")
    sim, n3 = load_csvs(results, "simulate.csv")
    runs = dict.fromkeys(list(df.get("run", [])) + list(sched.get("run", [])) + list(sim.get("run", [])))
    notes += n2 + n3 + corrupt_meta(results, runs)
    for n in notes:
        print(n, file=sys.stderr)
    if df.empty and sched.empty and sim.empty:
        raise HeteroError(f"no readable <run>/bench.csv, schedule.csv or simulate.csv under {results}")
    tables = speedup_tables(df)
    mixes, pols, sims = mix_tables(sched), policy_tables(sched), simulation_tables(sim)
    for title, table in tables + mixes + pols + sims:
        print(f"\n{title}\n{table.to_string()}")
    ratios = peer_ratios(df)
    if notes:       # a README without the corrupt runs would drop their results without a word
        raise HeteroError(f"{len(notes)} corrupt result file(s), named above; tables above are without them"
                          + ("" if args.no_write else f"; {results / 'README.md'} not rewritten"))
    if args.no_write:
        return 0
    (results / "plots").mkdir(parents=True, exist_ok=True)
    images = [] if args.no_plots else (_plots(df, results) if not df.empty else []) + \
        _gantts(results, list(dict.fromkeys(sched.run)) if not sched.empty else [])
    md = ["# Results", "",
          "Generated by `python -m bench.report` from the `<run>/bench.csv` files here; do not edit by hand.",
          "Cells: GFLOP/s (speedup vs the run's baseline). `*` = modeled (the FPGA model), otherwise measured "
          "(the `timing` column of bench.csv says on which clock). Each run's `meta.json` names the machine.", ""]
    for run in (dict.fromkeys(df.run) if not df.empty else ()):
        md += [f"## {run}", "", f"Machine: {run_machine(results, run)}", ""]
        for title, table in tables:
            if title.startswith(f"{run}:"):
                md += [f"### {title.split(': ', 1)[1]}", "", to_markdown(table), ""]
        r = ratios[ratios.run == run] if not ratios.empty else ratios
        if not r.empty:
            md += ["### Against the best peer (best peer time / our time; > 1 means faster than the peer)", "",
                   to_markdown(r.drop(columns="run").assign(vs_best_peer=r.vs_best_peer.round(2),
                                                            gflops=r.gflops.round(1)).set_index("workload")), ""]
        md += [line for rr, line in images if rr == run] + [""]
    for run in (dict.fromkeys(sched.run) if not sched.empty else ()):
        md += [f"## {run} (bench.schedule)", "", f"Machine: {run_machine(results, run)}", "",
               "Wall-clock makespans of real runs; speedups against the best single device; utilisation = busy "
               "time / makespan per device.", ""]
        for title, table in mixes + pols:
            if title.startswith(f"{run}:"):
                md += [f"### {title.split(': ', 1)[1]}", "", to_markdown(table), ""]
        md += [line for rr, line in images if rr == run] + [""]
    for title, table in sims:
        run, rest = title.split(": ", 1)
        md += [f"## {run} (bench.simulate)", "", f"All times modeled (*) by the simulator; {rest}.", "",
               to_markdown(table), ""]
    atomic_write(results / "README.md", "\n".join(md))
    print(f"\nwrote {results / 'README.md'}" + (f" and {len(images)} plots in {results / 'plots'}" if images else ""))
    return 0


def cli(argv=None) -> int:
    return main(_run, argv, prog="bench.report")


if __name__ == "__main__":
    sys.exit(cli())
