"""From result files to tables: every results/<run>/bench.csv, one speedup table per run, workload and dtype.

Tables are data first (DataFrames), formatting last (Markdown or terminal text). Measured and modeled numbers
are told apart in every cell: a modeled time carries a trailing '*'.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from hetero.errors import HeteroError
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
        frames.append(df.assign(run=path.parent.name))
    if not frames:
        return pd.DataFrame(), notes
    return pd.concat(frames, ignore_index=True), notes


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
        table = (g.assign(cell=[_cell(r) for r in g.itertuples()], backend=label)
                 .pivot_table(index="backend", columns="shape", values="cell", aggfunc="first", sort=False))
        baseline = g.baseline.dropna().iloc[0] if g.baseline.notna().any() else "-"
        out.append((f"{run}: {workload} ({dtype}), GFLOP/s (speedup vs {baseline})", table.fillna("-")))
    return out


def peer_ratios(df: pd.DataFrame) -> pd.DataFrame:
    """Our backends' time relative to the best peer per case (vs_best_peer), the figure the targets use."""
    if df.empty or "vs_best_peer" not in df:
        return pd.DataFrame()
    ours = df[(df.status == "ok") & (~df.peer.astype(bool)) & df.vs_best_peer.notna()]
    return ours[["run", "workload", "shape", "dtype", "backend", "gflops", "best_peer", "vs_best_peer", "timing"]]


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


def _mix_of(df: pd.DataFrame) -> pd.Series:
    return df["mix"] if "mix" in df else df.devices.str.replace(",", "+")


def mix_tables(sched: pd.DataFrame, policy: str = "dmda") -> list[tuple[str, pd.DataFrame]]:
    """Per (run, task set): rows device mixes (their `policy` run), columns makespan, throughput, speedup vs the
    best single device (the fastest one-device mix of the run, else the mix's own `single` policy run) and
    utilisation, and which devices shared a core. All measured (wall clock); no energy counter exists on these CPU
    devices."""
    out = []
    if sched.empty:
        return out
    sched = sched.assign(mix=_mix_of(sched))
    for (run, taskset), g in sched.groupby(["run", "taskset"], sort=False):
        rows = g[g.policy == policy]
        if rows.empty:
            continue
        alone = rows[~rows.mix.str.contains(r"\+")]
        best_single = alone.makespan_s.min() if len(alone) else None
        table = pd.DataFrame({
            "mix": rows.mix, "makespan_s": rows.makespan_s.round(3), "tasks_per_s": rows.tasks_per_s.round(1),
            "gflops": rows.gflops.round(1),
            "speedup_vs_best_single": (best_single / rows.makespan_s if best_single else rows.speedup_vs_single)
            .round(2),
            "utilization": rows.utilization, "energy": "not measured",
            # which devices of the mix shared a core (bench.schedule --share-cores): they slowed each other
            "shared_cores": (rows.shared_cores.astype(str).str.replace(r"^note: | share cores.*$", "", regex=True)
                             if "shared_cores" in rows else "no")}).set_index("mix")
        out.append((f"{run}: {taskset}, policy {policy}, measured wall clock", table))
    return out


def policy_tables(sched: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Per (run, task set, mix): rows policies, the figures the scheduler's targets use."""
    out = []
    if sched.empty:
        return out
    sched = sched.assign(mix=_mix_of(sched))
    cols = ["makespan_s", "speedup_vs_single", "speedup_vs_round_robin", "bound_s", "gap", "overhead_ms_per_task",
            "task_counts"]
    for (run, taskset, mix), g in sched.groupby(["run", "taskset", "mix"], sort=False):
        # runs with --repeat (since gap_median was kept): the median and range of the runs' own gaps
        # and (since it was kept) the driver's CPU time within its overhead
        more = [c for c in ("gap_median", "gap_min", "gap_max", "overhead_cpu_ms_per_task")
                if c in g and g[c].notna().any()]
        # runs with devices on shared cores (since the bound counts them as one): the bound had each its own cores
        if "lp_bound_own_cores_s" in g and ((g.lp_bound_own_cores_s - g.lp_bound_s).abs() > 1e-9).any():
            more.append("lp_bound_own_cores_s")
        table = g.set_index("policy")[cols + more].round(3)
        out.append((f"{run}: {taskset} on {mix}, measured wall clock", table))
    return out


def simulation_tables(sim: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Per simulate run: rows (mix, task set, policy); every figure modeled."""
    out = []
    for run, g in (sim.groupby("run", sort=False) if not sim.empty else ()):
        table = g.assign(row=g.mix + " | " + g.taskset + " | " + g.policy).set_index("row")[
            ["devices", "makespan_s", "tasks_per_s", "gflops", "gap", "sim_wall_s", "utilization"]]
        table = table.assign(makespan_s=table.makespan_s.map("{:.4g}*".format),
                             gflops=table.gflops.map("{:.4g}*".format), gap=table.gap.round(2),
                             tasks_per_s=table.tasks_per_s.map("{:.4g}".format), sim_wall_s=table.sim_wall_s.round(2))
        out.append((f"{run}: simulated (modeled*), profiles: {g.profiles.iloc[0]}", table))
    return out
