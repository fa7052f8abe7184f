"""Task-graph helpers: topological order and HEFT's upward rank."""

from __future__ import annotations

from hetero.scheduler.costs import estimate
from hetero.scheduler.device import kind


def upward_ranks(tasks, devices, model) -> dict:
    """HEFT's upward rank: mean predicted cost over capable devices + max over successors (comm ignored)."""
    children: dict = {t.id: [] for t in tasks}
    for t in tasks:
        for d in t.deps:
            children[d].append(t.id)
    by_id = {t.id: t for t in tasks}
    per_kind: dict = {}  # estimate depends only on the task's kind: once per kind
    cost = {
        t.id: per_kind[k] if (k := kind(t)) in per_kind else per_kind.setdefault(k, estimate(model, t, devices))
        for t in tasks
    }
    rank: dict = {}
    for t in reversed(topological(tasks)):
        rank[t.id] = cost[t.id] + max((rank[c] for c in children[t.id]), default=0.0)
    return {by_id[i].id: r for i, r in rank.items()}


def topological(tasks) -> list:
    done, out, by_id = set(), [], {t.id: t for t in tasks}
    pending = list(tasks)
    while pending:
        rest = []
        for t in pending:
            if all(d in done for d in t.deps):
                done.add(t.id)
                out.append(t)
            else:
                rest.append(t)
        if len(rest) == len(pending):
            raise ValueError(f"task graph has a cycle through task {rest[0].id}")
        pending = rest
    assert len(out) == len(by_id)
    return out
