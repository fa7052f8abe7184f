"""Lower bounds on a schedule's makespan, and so the gap a policy leaves to the best any schedule could do.

Lower bound = max(LP area bound, critical path), each (device, task kind) time being the mean measured in the
run, or the perf model's prediction where the run never put that kind on that device:
  LP (unrelated devices, tasks divisible): min T s.t. for each device d: sum_t n[d,t] * time[d,t] <= T,
  for each kind t: sum_d n[d,t] = N_t, n >= 0 (hetero.scheduler.lp; valid for graphs too, ignoring edges);
  devices pinned to the same cores (--share-cores, DeviceState.core_group) time-slice them: one more row,
  sum over the group's devices of sum_t n[d,t] * time[d,t] <= T, with their times alone on the cores
  (trace.solo_seconds). Without that row the bound is one for a machine with a core per device
  (lp_bound_own_cores_s in the results);
  critical path: the longest dependency chain, each task at its best device's time.
"""

from __future__ import annotations

import math
from collections import Counter

from hetero.scheduler.graph import topological
from hetero.scheduler.lp import area_allocation


def time_table(tasks, states, model) -> dict:
    """(device name, case) -> predicted seconds (inf where the device cannot run it or nothing is known)."""
    out = {}
    for t in tasks:
        for s in states:
            if (s.name, t.case) not in out:
                p = (
                    model.predict(s.backend, s.device, t.case)
                    if s.supports is None or t.case.workload in s.supports
                    else None
                )
                out[(s.name, t.case)] = p if p is not None else math.inf
    return out


def lp_bound(tasks, states, times, shared: bool = True) -> float:
    """The LP area bound; shared=False: as if every device had cores of its own."""
    kinds = Counter(t.case for t in tasks)
    return area_bound(
        kinds, [(1, {k: times[(s.name, k)] for k in kinds}) for s in states], share_groups(states) if shared else ()
    )


def area_bound(kinds: dict, pools: list[tuple[int, dict]], groups=()) -> float:
    """The LP area bound over pools of identical devices (hetero.scheduler.lp)."""
    return area_allocation(kinds, pools, groups)[0]


def share_groups(states) -> list[tuple[list[int], float]]:
    """area_allocation's groups: the indices of the states pinned to one set of cores, together one device."""
    on: dict = {}
    for i, s in enumerate(states):
        if s.core_group is not None:
            on.setdefault(s.core_group, []).append(i)
    return [(members, 1.0) for members in on.values() if len(members) > 1]


def critical_path(tasks, states, times) -> float:
    best = {t.id: min(times[(s.name, t.case)] for s in states) for t in tasks}
    longest: dict = {}
    for t in topological(tasks):
        longest[t.id] = best[t.id] + max((longest[p] for p in t.deps), default=0.0)
    return max(longest.values(), default=0.0)
