"""M/M/c queueing (Erlang C), the closed form a simulated stream on identical devices must reproduce.

Arrival rate lam, service rate mu per server, c servers, offered load a = lam / mu, utilisation rho = a / c < 1:
  P(wait) = C(c, a), from Erlang B by the stable recursion B(0) = 1, B(k) = a B(k-1) / (k + a B(k-1)),
  C = B / (1 - rho (1 - B));  mean wait Wq = C / (c mu - lam);  P(W > t) = C exp(-(c mu - lam) t), so the
  p-quantile of the wait is ln(C / (1 - p)) / (c mu - lam) when C > 1 - p, else 0.
"""
from __future__ import annotations

import math

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
