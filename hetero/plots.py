"""PNG plots from result rows: a roofline per device, a Gantt chart per schedule. Modeled points are hollow.

matplotlib is a core dependency; where it is missing anyway, unavailable() says so and the plot functions raise a
HeteroError naming the install.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hetero.errors import HeteroError


def _plt():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise HeteroError("plots need matplotlib, a dependency of hetero: pip install matplotlib") from None
    return plt


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def unavailable() -> str | None:
    """Why plots cannot be drawn here, or None."""
    try:
        _plt()
    except HeteroError as exc:
        return str(exc)
    return None


def roofline(df: pd.DataFrame, path: Path, title: str) -> Path:
    """Kernels placed at (FLOP/byte, GFLOP/s) under the device's compute and bandwidth roofs."""
    plt = _plt()
    ok = df[df.status == "ok"].copy()
    ok["intensity"] = ok.flops / ok.bytes
    fig, ax = plt.subplots(figsize=(6, 4.2))
    peak = ok.peak_gflops.dropna().max() if ok.peak_gflops.notna().any() else None
    bw = ok.mem_gbps.dropna().max() if "mem_gbps" in ok and ok.mem_gbps.notna().any() else None
    x = np.logspace(np.log10(max(ok.intensity.min() / 2, 0.1)), np.log10(ok.intensity.max() * 2), 100)
    if peak and bw:
        ax.plot(x, np.minimum(peak, bw * x), "k-", lw=1, label=f"roof: {peak:.0f} GFLOP/s, {bw:.0f} GB/s")
    elif peak:
        ax.axhline(peak, color="k", lw=1, label=f"peak {peak:.0f} GFLOP/s")
    for (workload, backend), g in ok.groupby(["workload", "backend"]):
        modeled = (g.timing == "modeled").all()
        ax.scatter(
            g.intensity,
            g.gflops,
            label=f"{workload} {backend}" + (" (modeled)" if modeled else ""),
            facecolors="none" if modeled else None,
            s=25,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    from matplotlib.ticker import NullFormatter

    ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels on a log axis collide
    ax.set_xlabel("arithmetic intensity (FLOP / compulsory byte)")
    ax.set_ylabel("GFLOP/s")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6, loc="lower right")
    return _save(plt, fig, path)


def gantt(events: list[dict], path: Path, title: str) -> Path:
    """One row per device, one bar per task (start..end, measured wall clock), coloured by workload."""
    plt = _plt()
    devices = list(dict.fromkeys(sorted(e["device"] for e in events)))
    workloads = list(dict.fromkeys(sorted(e["workload"] for e in events)))
    colors = {w: plt.get_cmap("tab10")(i) for i, w in enumerate(workloads)}
    fig, ax = plt.subplots(figsize=(9, 0.6 * len(devices) + 1.6))
    for w in workloads:
        for i, d in enumerate(devices):
            bars = [(e["start"], e["end"] - e["start"]) for e in events if e["device"] == d and e["workload"] == w]
            if bars:
                ax.broken_barh(bars, (i - 0.4, 0.8), facecolors=colors[w], edgecolor="black", linewidth=0.2)
    from matplotlib.patches import Patch

    ax.set_yticks(range(len(devices)), devices)
    ax.set_xlim(left=0)  # a zero-height bar for the legend used to stretch the axis to -0.4 s
    ax.set_xlabel("seconds from the run's start (measured wall clock)")
    ax.set_title(title, fontsize=9)
    ax.legend(
        handles=[Patch(color=colors[w], label=w) for w in workloads],
        fontsize=7,
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
    )
    return _save(plt, fig, path)


def latency_vs_load(rows: pd.DataFrame, path: Path, title: str) -> Path:
    """p99 (solid) and p50 (dashed) latency against load, a line per (mix, policy); the SLO as a grey line."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, ((mix, policy), g) in enumerate(rows.sort_values("load").groupby(["mix", "policy"], sort=False)):
        color = plt.get_cmap("tab10")(i % 10)
        ax.plot(g["load"], g["p99_s"], "o-", color=color, label=f"{mix} {policy} p99")
        ax.plot(g["load"], g["p50_s"], "x--", color=color, alpha=0.6, label=f"{mix} {policy} p50")
    slo = rows["slo_s"].dropna() if "slo_s" in rows else pd.Series(dtype=float)
    if len(slo):
        ax.axhline(float(slo.iloc[0]), color="grey", linewidth=1, label=f"SLO {float(slo.iloc[0]):g} s")
    ax.set_yscale("log")
    ax.set_xlabel("load (fraction of the capacity the perf model predicts)")
    timing = "modeled" if rows["timing"].astype(str).str.startswith("modeled").all() else "measured wall clock"
    ax.set_ylabel(f"latency, s ({timing})")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6, loc="upper left")
    return _save(plt, fig, path)
