"""What a schedule achieved, one row per policy run: makespan, throughput, per-device utilisation, the lower
bound and the gap to it (hetero.scheduler.bounds), the driver's overhead; and those rows as a terminal table."""

from __future__ import annotations

import math

from hetero.scheduler.bounds import critical_path, lp_bound, time_table
from hetero.scheduler.trace import solo_seconds

COLUMNS = [
    "taskset",
    "mix",
    "policy",
    "devices",
    "tasks",
    "makespan_s",
    "tasks_per_s",
    "gflops",
    "speedup_vs_single",
    "speedup_vs_round_robin",
    "lp_bound_s",
    "lp_bound_own_cores_s",
    "critical_path_s",
    "bound_s",
    "gap",
    "overhead_ms_per_task",
    "overhead_cpu_ms_per_task",
    "submit_ms_per_task",
    "utilization",
    "task_counts",
    "retries",
    "lost_devices",
    "alive_start",
    "alive_end",
    "prediction_basis",
    "error_basis",  # devices whose guard started from an observed / an assumed prediction error (slips.py)
    "checked",
    "wrong",
    "shared_cores",
    "repeats",
    "makespan_min_s",
    "makespan_max_s",
    "gap_median",
    "gap_min",
    "gap_max",
    "model_knew",  # what the perf model knew when each run started (bench.schedule --cold: calibration only)
    "placed_by",  # whose rules placed the tasks, per run: the policy itself, or auto's choices ('dmda=4;heteroprio=1')
]


def summarize(results, states, model, notes=()) -> list[dict]:
    """One row per policy run; bounds from the model as it stands after all runs (the same for every policy)."""
    rows = []
    by_policy = {r.policy: r for r in results}  # one task set on one mix
    for r in results:
        tasks = r.taskset.tasks
        times = time_table(tasks, states, model)
        seen: dict = {}  # this run's own mean durations win over the model's (a bound on *this* run)
        wall: dict = {}  # the same from wall-clock durations, for the bound as if every device had own cores
        case_of = {t.id: t.case for t in tasks}
        cores = {s.name: s.core_group for s in states if s.core_group is not None}
        for e, sec in zip(r.events, solo_seconds(r.events, cores)):
            seen.setdefault((e["device"], case_of[e["task"]]), []).append(sec)
            wall.setdefault((e["device"], case_of[e["task"]]), []).append(e["end"] - e["start"])
        own = lp_bound(tasks, states, {**times, **{k: sum(v) / len(v) for k, v in wall.items()}}, shared=False)
        times.update({k: sum(v) / len(v) for k, v in seen.items()})
        lp, cp = lp_bound(tasks, states, times), critical_path(tasks, states, times)
        bound = max(lp, cp)
        busy, count = {}, {}
        for e in r.events:
            busy[e["device"]] = busy.get(e["device"], 0.0) + e["end"] - e["start"]
            count[e["device"]] = count.get(e["device"], 0) + 1
        ms = r.makespan
        flops = sum(t.flops for t in tasks)
        single, rr = by_policy.get("single"), by_policy.get("round-robin")
        rows.append(
            dict(
                taskset=r.taskset.name,
                mix=r.mix or "+".join(s.name for s in states),
                policy=r.policy,
                devices=",".join(s.name for s in states),
                tasks=len(tasks),
                makespan_s=ms,
                tasks_per_s=len(tasks) / ms,
                gflops=flops / ms / 1e9,
                speedup_vs_single=single.makespan / ms if single else None,
                speedup_vs_round_robin=rr.makespan / ms if rr else None,
                lp_bound_s=lp,
                lp_bound_own_cores_s=own,
                critical_path_s=cp,
                bound_s=bound,
                gap=ms / bound if bound > 0 else None,
                overhead_ms_per_task=1e3 * r.overhead_s / len(tasks),
                overhead_cpu_ms_per_task=1e3 * r.overhead_cpu_s / len(tasks),
                submit_ms_per_task=1e3 * r.submit_s / len(tasks),
                utilization=";".join(f"{s.name}={busy.get(s.name, 0.0) / ms:.2f}" for s in states),
                task_counts=";".join(f"{s.name}={count.get(s.name, 0)}" for s in states),
                retries=r.retries,
                lost_devices=",".join(r.dead),
                alive_start=",".join(r.alive_start),
                alive_end=",".join(r.alive_end),
                prediction_basis=";".join(f"{k}={v}" for k, v in sorted(getattr(r, "basis", {}).items())),
                error_basis=";".join(f"{k}={v}" for k, v in sorted(getattr(r, "error_basis", {}).items())),
                checked=r.checked,
                wrong=len(r.wrong),
                shared_cores=" ".join(notes) or "no",
                placed_by=placed_by([r]),
            )
        )
    return rows


def placed_by(runs) -> str:
    """Whose rules placed the tasks over `runs` (RunResult.placed_by), counted: 'dmda=4;heteroprio=1'."""
    counts: dict = {}
    for r in runs:
        name = getattr(r, "placed_by", "") or r.policy
        counts[name] = counts.get(name, 0) + 1
    return ";".join(f"{n}={c}" for n, c in sorted(counts.items(), key=lambda x: (-x[1], x[0])))


def _policy_cell(r: dict) -> str:
    """The policy, and where it ran another's rules (auto) the most frequent of them: 'auto>dmda'."""
    first = (r.get("placed_by") or "").split(";")[0].split("=")[0]
    return r["policy"] if first in ("", r["policy"]) else f"{r['policy']}>{first}"


def format_rows(rows: list[dict]) -> str:
    spread = any((r.get("repeats") or 1) > 1 for r in rows)  # --repeat: the runs' makespan range
    head = (
        f"{'taskset':14s} {'mix':22s} {'policy':16s} {'makespan':>9s} {'tasks/s':>8s} {'GFLOP/s':>8s} "
        f"{'vs single':>9s} {'vs rr':>6s} {'bound':>7s} {'gap':>5s} {'ovh ms':>6s} {'retry':>5s}  "
        + ("runs: min-max s  gap: median (min-max)  " if spread else "")
        + "utilization (tasks)"
    )
    lines = [head]
    for r in rows:
        rng = f"{r['repeats']}: {r['makespan_min_s']:.3f}-{r['makespan_max_s']:.3f}".ljust(17) if spread else ""
        if spread and r.get("gap_min") is not None:
            rng += f"gap {r['gap_median']:.2f} ({r['gap_min']:.2f}-{r['gap_max']:.2f})  "
        f = lambda v, spec: format(v, spec) if v is not None and not (isinstance(v, float) and math.isnan(v)) else "-"  # noqa: E731
        util = " ".join(
            f"{u}({c.split('=')[1]})" for u, c in zip(r["utilization"].split(";"), r["task_counts"].split(";"))
        )
        lines.append(
            f"{r['taskset']:14s} {r['mix'][:22]:22s} {_policy_cell(r):16s} {f(r['makespan_s'], '9.3f')} "
            f"{f(r['tasks_per_s'], '8.1f')} "
            f"{f(r['gflops'], '8.1f')} {f(r['speedup_vs_single'], '9.2f')} "
            f"{f(r['speedup_vs_round_robin'], '6.2f')} {f(r['bound_s'], '7.3f')} {f(r['gap'], '5.2f')} "
            f"{f(r['overhead_ms_per_task'], '6.3f')} {r['retries']:5d}  {rng}{util}"
        )
    return "\n".join(lines)
