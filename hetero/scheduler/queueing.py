"""M/M/c queueing (Erlang C), the closed form a simulated stream on identical devices must reproduce.

Arrival rate lam, service rate mu per server, c servers, offered load a = lam / mu, utilisation rho = a / c < 1:
  P(wait) = C(c, a), from Erlang B by the stable recursion B(0) = 1, B(k) = a B(k-1) / (k + a B(k-1)),
  C = B / (1 - rho (1 - B));  mean wait Wq = C / (c mu - lam);  P(W > t) = C exp(-(c mu - lam) t), so the
  p-quantile of the wait is ln(C / (1 - p)) / (c mu - lam) when C > 1 - p, else 0.
"""

from __future__ import annotations

import heapq
import math

import numpy as np
from numba import njit

from hetero.errors import HeteroError


def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits, for c servers and offered load a (erlangs)."""
    rho = a / c
    if not 0 <= rho < 1:
        raise HeteroError(f"utilisation {rho:.3g} must be below 1 for a steady state (c={c}, load {a:.3g} erlangs)")
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b / (1 - rho * (1 - b))


def mean_wait(c: int, lam: float, mu: float) -> float:
    return erlang_c(c, lam / mu) / (c * mu - lam)


def wait_quantile(c: int, lam: float, mu: float, p: float) -> float:
    pw = erlang_c(c, lam / mu)
    return math.log(pw / (1 - p)) / (c * mu - lam) if pw > 1 - p else 0.0


def fcfs_waits(arrival, service, c: int):
    """(n,) waits of first-come-first-served customers on c identical servers (Kiefer-Wolfowitz: each takes the
    server that frees first), from arrival times (ascending) and service times: the reference the simulator's
    stream on identical devices must reproduce customer by customer."""
    free = [0.0] * c
    out = np.empty(len(arrival))
    for i, (a, s) in enumerate(zip(arrival, service)):
        start = max(a, heapq.heappop(free))
        out[i] = start - a
        heapq.heappush(free, start + s)
    return out


@njit(cache=True)
def _mmc_sample(n: int, lam: float, mu: float, c: int, seed: int):
    np.random.seed(seed)
    free = np.zeros(c)
    out = np.empty(n)
    t = 0.0
    for i in range(n):
        t += np.random.exponential(1.0 / lam)
        j = np.argmin(free)
        start = max(t, free[j])
        out[i] = start - t
        free[j] = start + np.random.exponential(1.0 / mu)
    return out


def mmc_waits(n: int, lam: float, mu: float, c: int, seed: int = 0):
    """(n,) FCFS waits of an M/M/c queue sampled with Numba's generator (seeded): the recursion of fcfs_waits
    over n Poisson arrivals and exponential services, fast enough for the tens of millions of customers a
    tight check of the Erlang C formula needs near saturation."""
    return _mmc_sample(n, lam, mu, c, seed)


def latency_tail(c: int, lam: float, mu: float, t: float, pw: float | None = None) -> float:
    """P(latency > t) in M/M/c FCFS, latency = wait + service: (1 - C) e^(-mu t) + C P(E1 + E2 > t), with
    E1 ~ Exp(g = c mu - lam) the wait of one who waits and E2 ~ Exp(mu) the service, independent.
    pw: C(c, lam / mu) if the caller has it (Erlang C's recursion is O(c), and a quantile asks for the tail
    at a hundred t)."""
    pw, g = erlang_c(c, lam / mu) if pw is None else pw, c * mu - lam
    both = (
        (1 + mu * t) * math.exp(-mu * t)
        if abs(g - mu) < 1e-12 * mu
        else (g * math.exp(-mu * t) - mu * math.exp(-g * t)) / (g - mu)
    )
    return (1 - pw) * math.exp(-mu * t) + pw * both


def latency_quantile(c: int, lam: float, mu: float, p: float) -> float:
    """The p-quantile of M/M/c latency (bisection on latency_tail)."""
    pw = erlang_c(c, lam / mu)
    lo, hi = 0.0, 1.0 / mu
    while latency_tail(c, lam, mu, hi, pw) > 1 - p:
        hi *= 2
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if latency_tail(c, lam, mu, mid, pw) > 1 - p else (lo, mid)
    return hi


def servers_for(lam: float, mu: float, slo: float, p: float = 0.99) -> tuple[int, float]:
    """(the fewest servers whose M/M/c latency p-quantile is at most `slo`, that quantile): None's place is a
    HeteroError when even an idle server's service time misses the SLO."""
    if -math.log(1 - p) / mu > slo:
        raise HeteroError(
            f"the SLO {slo:g} s is below the service time's own p{100 * p:g} "
            f"({-math.log(1 - p) / mu:.3g} s with exponential service): no fleet meets it"
        )
    lo = math.floor(lam / mu) + 1  # the fewest servers with a steady state
    hi = lo
    while latency_quantile(hi, lam, mu, p) > slo:
        hi = lo + 2 * (hi - lo) + 1
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if latency_quantile(mid, lam, mu, p) <= slo else (mid + 1, hi)
    return lo, latency_quantile(lo, lam, mu, p)
