"""The GPU check's bookkeeping (tests/gpu/run_on_gpu.sh): merge the bench.run folders, then one summary.

    python3 tests/gpu/gpu_check_summary.py merge <run dir>               # bench-runs/*/bench.csv -> bench.csv
    python3 tests/gpu/gpu_check_summary.py summary <run dir> --ours cupy  # -> stdout (the script saves it)

Standard library only, and every file optional: a stage that ran out of time leaves a summary of the rest.
The targets are the GPU issue's: ours (cupy) over the peer (torch-cuda) in the same run, and on the CPU+GPU mix
dmda no slower than the best single device and within 1.3x of the makespan bound.
"""

from __future__ import annotations

import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

# workload -> (dtypes the target covers, or None for every dtype; least vs_best_peer)
BENCH_TARGETS = {"matmul": (None, 0.95), "attention": (("float16", "bfloat16"), 0.7), "conv2d": (None, 0.8)}
GAP_TARGET = 1.3


def read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _num(text) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def merge(run: Path) -> str:
    """bench-runs/*/bench.csv into run/bench.csv (union of columns) and their meta.json into run/meta.json."""
    folders = sorted(p for p in (run / "bench-runs").glob("*") if (p / "bench.csv").is_file())
    rows = [r for p in folders for r in read_csv(p / "bench.csv")]
    if not rows:
        return "merge: no bench.csv under bench-runs/"
    cols = list(dict.fromkeys(c for r in rows for c in r))
    tmp = run / "bench.csv.tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, cols)
        w.writeheader()
        w.writerows(rows)
    tmp.replace(run / "bench.csv")
    metas = {p.name: json.loads((p / "meta.json").read_text()) for p in folders if (p / "meta.json").is_file()}
    first = next(iter(metas.values()), {})
    meta = {
        **first,
        "runs": {k: {"complete": m.get("complete", False), "command": m.get("command")} for k, m in metas.items()},
    }
    (run / "meta.json.tmp").write_text(json.dumps(meta, indent=1, default=str))
    (run / "meta.json.tmp").replace(run / "meta.json")
    return f"merge: {len(rows)} rows from {', '.join(p.name for p in folders)} -> {run / 'bench.csv'}"


def stage_lines(run: Path) -> list[str]:
    rows, path = [], run / "stages.tsv"
    if path.is_file():
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
    out = ["stage                 status     limit_s  wall_s"]
    for r in rows:
        out.append(f"{r['stage']:21s} {r['status']:10s} {r['limit_s']:>7s} {r['wall_s']:>7s}")
    total = sum(_num(r["wall_s"]) or 0 for r in rows)
    out.append(f"{'total':21s} {'':10s} {'':>7s} {total:7.0f}")
    return out


def bench_lines(run: Path, ours: str) -> list[str]:
    """Per workload and dtype: our rows' status counts and the range of peer time / our time."""
    groups = defaultdict(lambda: {"ratios": [], "status": defaultdict(int)})
    for r in read_csv(run / "bench.csv"):
        if r.get("backend") != ours:
            continue
        g = groups[(r["workload"], r["dtype"])]
        g["status"][r["status"]] += 1
        # vs_best_peer where the baseline is a peer (torch-cuda); a stand-in's baseline is no peer: speedup
        ratio = _num(r.get("vs_best_peer")) or _num(r.get("speedup"))
        if r["status"].startswith("ok") and ratio is not None:
            g["ratios"].append(ratio)
    if not groups:
        return [f"bench: no {ours} rows"]
    out = [
        f"bench: {ours} vs its peer (peer time / ours; > 1 is ours faster)",
        "workload          dtype      cases  min    max    target",
    ]
    for (wl, dt), g in sorted(groups.items()):
        lo = f"{min(g['ratios']):.2f}" if g["ratios"] else "-"
        hi = f"{max(g['ratios']):.2f}" if g["ratios"] else "-"
        dts, goal = BENCH_TARGETS.get(wl, ((), None))
        target = "-"
        if goal is not None and (dts is None or dt in dts):
            verdict = "no ratio" if not g["ratios"] else "met" if min(g["ratios"]) >= goal else "NOT met"
            target = f">= {goal}: {verdict}"
        status = ",".join(f"{k}={v}" for k, v in sorted(g["status"].items()))
        out.append(f"{wl:17s} {dt:10s} {status:6s} {lo:6s} {hi:6s} {target}")
    return out


def schedule_lines(run: Path) -> list[str]:
    """Per task set: dmda on the combined mix against the best single-device row and the bound."""
    out = []
    for folder in sorted(run.glob("schedule-*")):
        rows = read_csv(folder / "schedule.csv")
        if not rows:
            out.append(f"{folder.name}: no schedule.csv (stage cut short or failed; see its log)")
            continue
        for ts in dict.fromkeys(r["taskset"] for r in rows):
            mine = [r for r in rows if r["taskset"] == ts]
            singles = [float(r["makespan_s"]) for r in mine if "+" not in r["mix"]]
            for r in (r for r in mine if "+" in r["mix"] and r["policy"] == "dmda"):
                best = min(singles) if singles else None
                gap = _num(r.get("gap"))
                ok = best is not None and float(r["makespan_s"]) <= best and gap is not None and gap <= GAP_TARGET
                out.append(
                    f"{ts:15s} {r['mix']:14s} dmda {float(r['makespan_s']):8.3f} s  best single "
                    + (f"{best:8.3f} s" if best else "       -  ")
                    + f"  gap {r.get('gap', '-')[:5]:5s}"
                    + f"  {'met' if ok else 'NOT met'} (<= best single, gap <= {GAP_TARGET})"
                )
        errs = [abs(e) for r in read_csv(folder / "replay.csv") if (e := _num(r.get("error_pct"))) is not None]
        out.append(
            f"{folder.name}: replay worst |error| "
            + (f"{max(errs):.1f}% over {len(errs)} runs" if errs else "- (no replay.csv)")
        )
    return out or ["schedule: no schedule-* folder"]


def summary(run: Path, ours: str) -> str:
    parts = [f"GPU check {run.name}"]
    smi = run / "nvidia-smi.txt"
    if smi.is_file():
        parts += smi.read_text().strip().splitlines()[:3]
    parts += [""] + stage_lines(run) + [""] + bench_lines(run, ours) + [""] + schedule_lines(run)
    return "\n".join(parts)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2 or argv[0] not in ("merge", "summary"):
        print("usage: gpu_check_summary.py merge|summary <run dir> [--ours BACKEND]", file=sys.stderr)
        return 2
    run = Path(argv[1])
    ours = argv[argv.index("--ours") + 1] if "--ours" in argv else "cupy"
    print(merge(run) if argv[0] == "merge" else summary(run, ours))
    return 0


if __name__ == "__main__":
    sys.exit(main())
