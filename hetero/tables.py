"""Tables are data first, formatting last: rows (dicts) -> one text table per workload and dtype."""

from __future__ import annotations

import math

TIMING_SHORT = {"measured-device-clock": "device", "measured-wall-clock": "wall", "modeled": "MODELED"}


def _num(v, fmt: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, fmt)


def _cells(r: dict, quant: bool = False) -> list[str]:
    """A row's cells; int8 blocks (quant) add what quantizing cost: quant_err under the run's scales and per tensor."""
    status = r["status"] if r["status"] != "ok" else ("ok~" if r.get("noisy") else "ok")
    return [
        r["shape"],
        r["backend"] + (" (peer)" if r.get("peer") else ""),
        status,
        _num(r.get("median_s") and r["median_s"] * 1e3, ".3f"),
        _num(r.get("gflops"), ".1f"),
        _num(r.get("pct_peak"), ".0f"),
        _num(r.get("pct_stream"), ".0f"),
        _num(r.get("speedup"), ".2f"),
        _num(r.get("vs_best_peer"), ".2f"),
        TIMING_SHORT.get(r.get("timing"), r.get("timing") or "-"),
        _num(r.get("max_rel_err"), ".1e"),
    ] + ([_num(r.get("quant_err"), ".2e"), _num(r.get("quant_err_tensor"), ".2e")] if quant else [])


HEADER = [
    "shape",
    "backend",
    "status",
    "median ms",
    "GFLOP/s",
    "% peak",
    "% STREAM",
    "speedup",
    "vs peer",
    "timing",
    "rel err",
]
QUANT_HEADER = ["quant err", "per tensor"]  # int8: relative RMS error of the dequantized result (workloads.quant)


def _line(cells: list[str], widths: list[int]) -> str:
    """Text columns left-aligned, number columns (from the fourth on) right-aligned."""
    return "  ".join(c.rjust(w) if i >= 3 else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))


def format_table(rows: list[dict]) -> str:
    """One block per (workload, dtype): rows grouped by shape, then backend."""
    blocks = []
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["workload"], r["dtype"]), []).append(r)
    for (workload, dtype), group in groups.items():
        baseline = group[0].get("baseline") or "-"
        quant = any(r.get("quant_err") is not None for r in group)
        header = HEADER + QUANT_HEADER if quant else HEADER
        body = [_cells(r, quant) for r in group]
        widths = [max(len(x) for x in col) for col in zip(header, *body)]
        scales = f"; int8 exact, quant err with {group[0].get('quant') or '-'} scales" if quant else ""
        out = [
            f"{workload} ({dtype}); speedup vs {baseline}; 'vs peer' = best peer's time / this time{scales}",
            _line(header, widths),
            _line(["-" * w for w in widths], widths),
        ]
        prev = None
        for r, cells in zip(group, body):
            if prev is not None and r["shape"] != prev:
                out.append("")
            prev = r["shape"]
            out.append(_line(cells, widths))
        notes = sorted({f"  {r['backend']}: {r['error']}" for r in group if r["status"] != "ok" and r.get("error")})
        blocks.append("\n".join(out + notes))
    legend = (
        "timing: device = measured on the device's clock, wall = measured wall clock, MODELED = from a model; "
        "ok~ = IQR/median > 10%; % STREAM = the workload's bytes / median time, over the STREAM triad measured in this "
        "run (host-memory devices; memory-bound kernels: a read-only stream can pass 100%)"
    )
    return "\n\n".join(blocks + [legend])
