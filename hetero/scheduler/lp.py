"""The LP area relaxation of placing independent tasks on pools of identical devices (no order, no
dependencies): the lower bound every schedule report quotes, and the allocation dmda is guided by.

    min T  s.t.  sum_k n[p,k] * time[p,k] <= m_p * T  (each pool p of m_p devices),  sum_p n[p,k] = N_k,  n >= 0
                 sum_{p in G} sum_k n[p,k] * time[p,k] <= c_G * T  (each group G of pools whose devices share
                                                              cores, c_G devices' worth of them)
"""

from __future__ import annotations

import math

import numpy as np

# At import, not in the call: importing scipy.optimize takes a large fraction of a second, which dmda's first
# plan would otherwise count as scheduling overhead.
from scipy.optimize import linprog


def area_allocation(
    kinds: dict, pools: list[tuple[int, dict]], groups: list[tuple[list[int], float]] = ()
) -> tuple[float, list[dict]]:
    """(T, [kind -> tasks of it on pool p]) for kinds = kind -> task count and pools = [(m devices, kind ->
    seconds, inf where it cannot run)]; (nan, []) when some kind runs nowhere. groups: [(pool indices,
    capacity)] for pools whose devices time-slice shared cores: together they do at most `capacity` devices'
    work."""
    kinds_l = list(kinds)
    var = [(i, j) for i, (_, times) in enumerate(pools) for j, k in enumerate(kinds_l) if math.isfinite(times[k])]
    nv = len(var) + 1  # n[p,k] ..., T last
    c = np.zeros(nv)
    c[-1] = 1.0
    a_ub = np.zeros((len(pools), nv))
    a_eq = np.zeros((len(kinds_l), nv))
    for v, (i, j) in enumerate(var):
        a_ub[i, v] = pools[i][1][kinds_l[j]]
        a_eq[j, v] = 1.0
    a_ub[:, -1] = [-m for m, _ in pools]
    if groups:
        rows = np.zeros((len(groups), nv))
        for g, (members, capacity) in enumerate(groups):
            rows[g] = a_ub[list(members)].sum(axis=0)
            rows[g, -1] = -capacity
        a_ub = np.vstack([a_ub, rows])
    r = linprog(
        c,
        A_ub=a_ub,
        b_ub=np.zeros(len(a_ub)),
        A_eq=a_eq,
        b_eq=[kinds[k] for k in kinds_l],
        bounds=[(0, None)] * nv,
        method="highs",
    )
    if not r.success:
        return math.nan, []
    alloc: list[dict] = [{} for _ in pools]
    for v, (i, j) in enumerate(var):
        alloc[i][kinds_l[j]] = float(r.x[v])
    return float(r.x[-1]), alloc
