"""From result files to tables: every results/<run>/bench.csv, one speedup table per run, workload and dtype.

Tables are data first (DataFrames), formatting last (Markdown or terminal text). Measured and modeled numbers
are told apart in every cell: a modeled time carries a trailing '*'.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from hetero.errors import HeteroError
from hetero.results import read_rows


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


def run_machine(results_dir, run: str) -> str:
    """'AMD EPYC, 2 cores' or the GPU's name, from the run's meta.json."""
    try:
        meta = json.loads((Path(results_dir) / run / "meta.json").read_text())
    except (OSError, ValueError):
        return "machine unknown (no readable meta.json)"
    host = meta.get("host", {})
    gpus = sorted({d.get("name") for d in meta.get("devices", {}).values() if d.get("kind") == "gpu"})
    text = f"{host.get('cpu', '?')}, {host.get('physical_cores', '?')} cores"
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
