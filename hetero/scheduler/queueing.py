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
