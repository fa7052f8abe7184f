"""Ratios between a run's rows: each backend's time against the baseline's and against the best peer's."""

from __future__ import annotations


def add_ratios(rows: list[dict], baseline: str) -> None:
    """speedup = baseline time / time; vs_best_peer = best peer time / time (>1 means we beat every peer).

    Like with like only: a modeled time is divided only by a modeled time and a measured one only by a measured
    one (a model against a stopwatch says nothing); with no baseline or peer of the row's kind the cell is blank."""
    by_case: dict = {}
    for r in rows:
        by_case.setdefault((r["workload"], r["shape"], r["dtype"], is_modeled(r)), []).append(r)
    for group in by_case.values():
        ok = [r for r in group if r["status"] == "ok"]
        base = next((r for r in ok if r["backend"] == baseline), None)
        peers = [r for r in ok if r["peer"]]
        best_peer = min(peers, key=lambda r: r["median_s"]) if peers else None
        for r in group:
            r["baseline"] = baseline
            for k in ("speedup", "best_peer", "vs_best_peer"):  # a stale ratio (read from a file) never stays
                r.pop(k, None)
            if r["status"] != "ok":
                continue
            if base:
                r["speedup"] = base["median_s"] / r["median_s"]
            if best_peer:
                r["best_peer"] = best_peer["backend"]
                r["vs_best_peer"] = best_peer["median_s"] / r["median_s"]


def is_modeled(row: dict) -> bool:
    """A time that came from a model (timing label 'modeled'), not a clock."""
    return row.get("timing") == "modeled"
