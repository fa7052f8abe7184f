"""From result files to tables: every results/<run>/bench.csv, schedule.csv and simulate.csv.

Tables are data first (DataFrames), formatting last (Markdown or terminal text). Measured and modeled numbers
are told apart in every cell: a modeled time carries a trailing '*'.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hetero.errors import HeteroError
from hetero.ratios import add_ratios
from hetero.results import read_rows
from hetero.validate import read_meta


def load_bench(results_dir) -> tuple[pd.DataFrame, list[str]]:
    """(all rows with a 'run' column, notes about files that could not be read)."""
    frames, notes = [], []
    for path in sorted(Path(results_dir).glob("*/bench.csv")):
        try:
            df = read_rows(path)
        except HeteroError as exc:
            notes.append(f"skipped: {exc}")
            continue
        frames.append(like_with_like(df).assign(run=path.parent.name))
    if not frames:
        return pd.DataFrame(), notes
    return pd.concat(frames, ignore_index=True), notes


def like_with_like(df: pd.DataFrame) -> pd.DataFrame:
    """The run's rows with speedup and vs_best_peer computed again, modeled against modeled and measured against
    measured only: files written before that rule may hold a model's time divided by a stopwatch's."""
    if df.empty or not {"status", "dtype", "peer", "timing", "baseline"} <= set(df.columns):
        return df
    rows = df.to_dict("records")
    for r in rows:
        r["peer"] = bool(r["peer"]) and not pd.isna(r["peer"])
    baseline = df.baseline.dropna()
    add_ratios(rows, baseline.iloc[0] if len(baseline) else "numpy")
    return pd.DataFrame(rows).reindex(columns=df.columns)


def corrupt_meta(results_dir, runs) -> list[str]:
    """'skipped: corrupt run metadata ...' for each run's meta.json that exists and breaks hetero.validate's
    rules (a missing one only leaves the machine unknown)."""
    notes = []
    for run in runs:
        path = Path(results_dir) / run / "meta.json"
        try:
            if path.exists():
                read_meta(path)
        except HeteroError as exc:
            notes.append(f"skipped: {exc}")
    return notes


def run_machine(results_dir, run: str) -> str:
    """'AMD EPYC, 2 cores' or the GPU's name, from the run's meta.json."""
    try:
        meta = read_meta(Path(results_dir) / run / "meta.json")
    except HeteroError:
        return "machine unknown (no readable meta.json)"
    host = meta.get("host", {})
    gpus = sorted({d.get("name") for d in meta.get("devices", {}).values() if d.get("kind") == "gpu"})
    text = f"{host.get('cpu', '?')}, {host.get('physical_cores', '?')} cores"
    cpu = next((d for d in meta.get("devices", {}).values() if d.get("kind") == "cpu" and d.get("peak_gflops")), None)
    if cpu:
        text += f" (fp32 peak {cpu['peak_gflops']:.0f} GFLOP/s, {cpu.get('peak_source', 'source unknown')})"
    archs = sorted({b.get("architecture") for b in meta.get("blas", []) if b.get("architecture")})
    if archs:
        text += f"; OpenBLAS kernels {', '.join(archs)}"
        if meta.get("openblas_coretype", "").startswith("unset"):
            text += " (picked by OpenBLAS)"
        elif meta.get("openblas_coretype"):
            text += f" (OPENBLAS_CORETYPE={meta['openblas_coretype']})"
    return text + (f"; {', '.join(gpus)}" if gpus else "") + f"; {meta.get('date', '')[:10]}"


def _cell(r) -> str:
    if r.status != "ok":
        return r.status
    star = "*" if r.timing == "modeled" else ""
    speed = f" ({r.speedup:.2f}x)" if pd.notna(r.speedup) else ""
    return f"{r.gflops:.1f}{star}{speed}"


def speedup_tables(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """[(title, table)]: rows backends, columns shapes, cells 'GFLOP/s (speedup vs baseline)'."""
    out = []
    if df.empty:
        return out
    for (run, workload, dtype), g in df.groupby(["run", "workload", "dtype"], sort=False):
        g = g[g.status != "skipped"]
        if g.empty:
            continue
        label = g.backend + g.peer.astype(bool).map({True: " (peer)", False: ""})
        table = g.assign(cell=[_cell(r) for r in g.itertuples()], backend=label).pivot_table(
            index="backend", columns="shape", values="cell", aggfunc="first", sort=False
        )
        baseline = g.baseline.dropna().iloc[0] if g.baseline.notna().any() else "-"
        out.append((f"{run}: {workload} ({dtype}), GFLOP/s (speedup vs {baseline})", table.fillna("-")))
    return out


def to_markdown(table: pd.DataFrame) -> str:
    cols = [table.index.name or ""] + [str(c) for c in table.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for idx, row in table.iterrows():
        lines.append("| " + " | ".join([str(idx)] + [str(v) for v in row.values]) + " |")
    return "\n".join(lines)


def load_csvs(results_dir, name: str) -> tuple[pd.DataFrame, list[str]]:
    """Every results/<run>/<name> (schedule.csv, simulate.csv) with a 'run' column; notes on unreadable files."""
    frames, notes = [], []
    for path in sorted(Path(results_dir).glob(f"*/{name}")):
        try:
            frames.append(read_rows(path, name).assign(run=path.parent.name))
        except HeteroError as exc:
            notes.append(f"skipped: {exc}")
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), notes


def _span(values, fmt: str = "{:.2f}", suffix: str = "") -> str:
    """'lo-hi' over the values that are set ('lo' when both print alike; '-' when none is)."""
    v = [x for x in values if pd.notna(x)]
    if not v:
        return "-"
    lo, hi = fmt.format(min(v)), fmt.format(max(v))
    return (lo if lo == hi else f"{lo}-{hi}") + suffix


def run_summary(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Per bench run, one table: a row per (workload, dtype, backend) with the range over its shapes of GFLOP/s
    (a trailing * when modeled), the speedup vs the run's baseline and the best peer's time over ours (> 1: ours
    is faster); rows that did not run ok are counted by status."""
    out = []
    for run, g in df.groupby("run", sort=False) if not df.empty else ():
        rows = []
        for (workload, dtype, backend), h in g[g.status != "skipped"].groupby(
            ["workload", "dtype", "backend"], sort=False
        ):
            ok = h[h.status == "ok"]
            bad = h.status[h.status != "ok"].value_counts()
            rows.append(
                {
                    "workload": workload,
                    "dtype": dtype,
                    "backend": backend + (" (peer)" if h.peer.astype(bool).any() else ""),
                    "shapes": len(h),
                    "gflops": _span(ok.gflops, "{:.1f}") + ("*" if (ok.timing == "modeled").any() else ""),
                    "speedup": _span(ok.speedup, suffix="x"),
                    "vs_best_peer": _span(ok.vs_best_peer) if "vs_best_peer" in ok else "-",
                    "not_ok": ", ".join(f"{n} {st}" for st, n in bad.items()) or "-",
                }
            )
        if rows:
            baseline = g.baseline.dropna().iloc[0] if g.baseline.notna().any() else "-"
            out.append(
                (
                    f"{run}: GFLOP/s, speedup vs {baseline}, best peer time / ours (range over shapes)",
                    pd.DataFrame(rows).set_index("workload"),
                )
            )
    return out


def _mix_of(df: pd.DataFrame) -> pd.Series:
    return df["mix"] if "mix" in df else df.devices.str.replace(",", "+")


def _gap_runs(g: pd.DataFrame) -> pd.Series:
    """The median and range of the --repeat runs' own gaps, '-' for runs made without them."""
    if "gap_median" not in g:
        return pd.Series("-", index=g.index)
    return pd.Series(
        [
            f"{r.gap_median:.2f} ({r.gap_min:.2f}-{r.gap_max:.2f})" if pd.notna(r.gap_median) else "-"
            for r in g.itertuples()
        ],
        index=g.index,
    )


def schedule_summary(sched: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Per bench.schedule run, one table: each one-device mix's dmda row, and every policy on each mix of several
    devices. vs_best_single: the fastest one-device mix of the run on that task set (else the mix's own `single`
    run) over this makespan. All measured wall clock."""
    out = []
    if sched.empty:
        return out
    sched = sched.assign(mix=_mix_of(sched))
    for run, g in sched.groupby("run", sort=False):
        alone = g[~g.mix.str.contains(r"\+") & (g.policy == "dmda")].groupby("taskset").makespan_s.min()
        best = g.taskset.map(alone)
        rows = g[g.mix.str.contains(r"\+") | (g.policy == "dmda")]
        table = pd.DataFrame(
            {
                "taskset": rows.taskset,
                "mix": rows.mix,
                "policy": rows.policy,
                "makespan_s": rows.makespan_s.round(3),
                "vs_best_single": (best[rows.index] / rows.makespan_s).fillna(rows.speedup_vs_single).round(2),
                "vs_round_robin": rows.speedup_vs_round_robin.round(2),
                "bound_s": rows.bound_s.round(3),
                "gap": rows.gap.round(2),
                "gap_runs": _gap_runs(rows),
                "overhead_ms": rows.overhead_ms_per_task.round(2),
                "tasks": rows.task_counts,
            }
        ).set_index("taskset")
        out.append((f"{run}: measured wall clock", table.astype(object).where(table.notna(), "-")))
    return out


def shared_cores_note(sched: pd.DataFrame, run: str) -> str:
    """Which devices of a schedule run shared cores (bench.schedule --share-cores), '' when none did."""
    if sched.empty or "shared_cores" not in sched:
        return ""
    notes = {str(v).removeprefix("note: ") for v in sched[sched.run == run].shared_cores if str(v) not in ("no", "nan")}
    return "; ".join(sorted(notes))


def simulation_tables(sim: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Per simulate run: rows (mix, task set, policy); every figure modeled."""
    out = []
    for run, g in sim.groupby("run", sort=False) if not sim.empty else ():
        table = g.assign(**{"mix | taskset | policy": g.mix + " | " + g.taskset + " | " + g.policy}).set_index(
            "mix | taskset | policy"
        )[["devices", "makespan_s", "tasks_per_s", "gflops", "gap", "sim_wall_s", "utilization"]]
        table = table.assign(
            makespan_s=table.makespan_s.map("{:.4g}*".format),
            gflops=table.gflops.map("{:.4g}*".format),
            gap=table.gap.round(2),
            tasks_per_s=table.tasks_per_s.map("{:.4g}".format),
            sim_wall_s=table.sim_wall_s.round(2),
        )
        out.append((f"{run}: simulated (modeled*), profiles: {g.profiles.iloc[0]}", table))
    return out
