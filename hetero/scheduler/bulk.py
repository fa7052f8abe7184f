"""A stream of one-task requests simulated over arrays: what simulate.simulate does for it, decision for decision
and float for float, with no Python object per task or event (tests/scheduler/test_bulk.py runs both).

It holds where the driver loop (driver.py), dmda (policies/dmda.py) and the clock (simulate.py) reduce to a few
arrays: every request is one task with no deps (mixed, models), the policy is dmda with every kind predicted
on every pool that runs it, and no device shares cores, dies or has durations
apart from the model's. Then:
- dmda places a stream by earliest finish alone (no LP shares, no drift, no late binding), each request at its
  arrival, requests arriving together highest upward rank first (a task's mean predicted time);
- a pool of identical devices shows the policy one member: the least (busy, queue end, index), the member
  Pools.view shows, kept here in an indexed heap per pool;
- the clock's events are a device starting its next task and a task ending, in (time, push order).
A Python object per task and per event costs tens of microseconds; a million requests must take seconds.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hetero.scheduler.costs import estimate, predict, transfer

START, END = 0, 1  # event kinds; the kernel passes them as np.int64 (a literal int compiles a variant)


def eligible(stream, devices, policy) -> bool:
    """Whether `policy` on `stream` is a case run_stream simulates (see the module docstring)."""
    from hetero.scheduler.policies.dmda import Dmda

    if stream.draw is None or type(policy) is not Dmda:
        return False
    return all(d.alive and d.core_group is None for d in devices)


def _pools(devices) -> tuple[list, np.ndarray]:
    """(pool -> [device indices]) as Pools groups them, in the order Pools shows them; device -> pool."""
    groups: dict = {}
    for i, d in enumerate(devices):
        groups.setdefault((d.backend, d.device, d.latency, d.bandwidth, d.supports), []).append(i)
    of = np.empty(len(devices), dtype=np.int64)
    for p, members in enumerate(groups.values()):
        of[members] = p
    return list(groups.values()), of


def _tables(draw, devices, pools, model):
    """(pools, cases) predicted seconds (nan: the pool does not run the case), transfer seconds and the delay a
    call travels before its device may start it (the transfer, or the device's latency when none); None when a
    pool that runs a case has no prediction for it (dmda would explore it: the general path)."""
    shape = (len(pools), len(draw.cases))
    pred, tr, delay = np.full(shape, np.nan), np.zeros(shape), np.zeros(shape)
    for j in range(len(draw.cases)):
        t = draw.task(j, j)
        for p, members in enumerate(pools):
            d = devices[members[0]]
            if not d.runs(t):
                continue
            if (got := predict(model, t, d)) is None:
                return None
            pred[p, j], tr[p, j] = got, transfer(t, d)
            delay[p, j] = tr[p, j] or d.latency
    return pred, tr, delay


def _order(draw, arrival, devices, model) -> np.ndarray:
    """Requests in the order the driver places them: by arrival, those arriving together highest rank first."""
    if len(arrival) < 2 or not (np.diff(np.sort(arrival)) == 0).any():
        return np.argsort(arrival, kind="stable")
    rank = np.array([estimate(model, draw.task(j, j), devices) for j in range(len(draw.cases))])
    return np.lexsort((-rank[draw.kind], arrival))


def run_stream(stream, devices, policy, model):
    """(first start, last end, device index) per request of `stream` (eligible), on the simulator's clock; None
    when some pool lacks a prediction (simulate.simulate then runs it, exploring)."""
    pools, of = _pools(devices)
    tables = _tables(stream.draw, devices, pools, model)
    kinds = stream.draw.kind.astype(np.int64)
    if tables is None or np.isnan(tables[0][:, np.unique(kinds)]).all(axis=0).any():
        return None  # unpredicted, or a case no device runs (the driver's own error says which)
    inner = getattr(policy, "inner", None) or policy
    alpha, beta = getattr(inner, "alpha", 1.0), getattr(inner, "beta", 1.0)
    order = _order(stream.draw, stream.arrival, devices, model)
    members = np.concatenate([np.array(m, dtype=np.int64) for m in pools])
    offsets = np.cumsum([0] + [len(m) for m in pools]).astype(np.int64)
    ovh = np.array([d.overhead for d in devices], dtype=float)
    out = _simulate(kinds[order], stream.arrival[order], *tables, of, members, offsets, ovh, alpha, beta)
    start, end, where = (np.empty_like(x) for x in out)
    for x, y in zip((start, end, where), out):
        x[order] = y
    return start, end, where


# -- the kernel: arrays only -----------------------------------------------------------------------------------
@njit(cache=True)
def _before(qe, busy, a, b) -> bool:
    """Device a before b in its pool's heap: (busy, queue end, index) lexicographically (Pools' key)."""
    ba, bb = busy[a] > 0, busy[b] > 0
    if ba != bb:
        return bb
    if qe[a] != qe[b]:
        return qe[a] < qe[b]
    return a < b


@njit(cache=True)
def _resift(heap, pos, lo, hi, d, qe, busy) -> None:
    """Device d's key changed: move it up or down its pool's heap (heap[lo:hi], pos: device -> slot)."""
    k = pos[d]
    while k > lo and _before(qe, busy, d, heap[lo + (k - lo - 1) // 2]):
        up = lo + (k - lo - 1) // 2
        heap[k], pos[heap[up]] = heap[up], k
        k = up
    while True:
        c = lo + 2 * (k - lo) + 1
        if c >= hi:
            break
        if c + 1 < hi and _before(qe, busy, heap[c + 1], heap[c]):
            c += 1
        if not _before(qe, busy, heap[c], d):
            break
        heap[k], pos[heap[c]] = heap[c], k
        k = c
    heap[k], pos[d] = d, k


@njit(cache=True)
def _ev_first(et, es, a, b) -> bool:
    return et[a] < et[b] or (et[a] == et[b] and es[a] < es[b])


@njit(cache=True)
def _ev_push(ev, et, es, n, t, seq, what, j) -> int:
    """Push event (t, seq, what, j) onto the heap of n events (ev: [what, j] a slot, et: times, es: push
    order); returns n + 1."""
    k = n
    et[k], es[k], ev[k, 0], ev[k, 1] = t, seq, what, j
    while k > 0 and _ev_first(et, es, k, (k - 1) // 2):
        _ev_swap(ev, et, es, k, (k - 1) // 2)
        k = (k - 1) // 2
    return n + 1


@njit(cache=True)
def _ev_swap(ev, et, es, a, b) -> None:
    et[a], et[b] = et[b], et[a]
    es[a], es[b] = es[b], es[a]
    for c in range(2):
        ev[a, c], ev[b, c] = ev[b, c], ev[a, c]


@njit(cache=True)
def _ev_pop(ev, et, es, n) -> int:
    """Move the first event to slot n - 1 and restore the heap over the rest; returns n - 1."""
    n -= 1
    k = np.int64(0)
    _ev_swap(ev, et, es, k, n)
    while True:
        c = 2 * k + 1
        if c >= n:
            break
        if c + 1 < n and _ev_first(et, es, c + 1, c):
            c += 1
        if not _ev_first(et, es, c, k):
            break
        _ev_swap(ev, et, es, k, c)
        k = c
    return n


# rows of the kernel's state arrays. Per device, float: queue end (the driver's), predicted seconds of its sent
# tasks not heard of (the driver's `queued`), when it may start its next task (the clock's); int: tasks sent not
# heard of, the request running (-1: none), the first and last request waiting in its queue (a linked list).
QE, QUEUED, FREE = 0, 1, 2
BUSY, RUNNING, HEAD, TAIL = 0, 1, 2, 3
# per request (in placement order), float: when its call reaches the device, its predicted seconds plus the
# call overhead, its duration, its start and end; int: the next request in its device's queue, its device
READY, COST, DUR, BEGAN, ENDED = 0, 1, 2, 3, 4
NEXT, WHERE = 0, 1


@njit(cache=True)
def _place(k, now, pred, tr, heap, offsets, fdev, ovh, alpha, beta):
    """dmda's choice for a task of kind k at `now` (Dmda.place/_earliest): (pool, device), the device of each
    capable pool's shown member minimising alpha * (finish - earliest finish) + beta * transfer, first pool on
    ties, finish = max(queue end, now + transfer) + predicted seconds + call overhead."""
    best = np.inf
    for p in range(len(offsets) - 1):
        if not np.isnan(pred[p, k]):
            d = heap[offsets[p]]
            best = min(best, max(fdev[QE, d], now + tr[p, k]) + (pred[p, k] + ovh[d]))
    pick, score = -1, np.inf
    for p in range(len(offsets) - 1):
        if not np.isnan(pred[p, k]):
            d = heap[offsets[p]]
            s = alpha * (max(fdev[QE, d], now + tr[p, k]) + (pred[p, k] + ovh[d]) - best) + beta * tr[p, k]
            if s < score:
                pick, score = p, s
    return pick, heap[offsets[pick]]


@njit(cache=True)
def _send(r, k, now, p, d, pred, tr, delay, state, ev, seq, ne, ovh):
    """The driver sends request r (kind k) to device d of pool p at `now` (place_task, Driver._send,
    Clock.send): its queue end and `queued` grow by the task, and the device's start is due if it was idle."""
    fdev, idev, ftask, itask, heap, pos, offsets = state
    c = pred[p, k] + ovh[d]
    fdev[QE, d] = max(fdev[QE, d], now + tr[p, k]) + c
    fdev[QUEUED, d] += c
    idev[BUSY, d] += 1
    _resift(heap, pos, offsets[p], offsets[p + 1], d, fdev[QE], idev[BUSY])
    ftask[READY, r], ftask[COST, r], ftask[DUR, r], itask[WHERE, r] = now + delay[p, k], c, pred[p, k], d
    if idev[HEAD, d] < 0:
        idev[HEAD, d] = r
        if idev[RUNNING, d] < 0:
            ne = _ev_push(ev[0], ev[1], ev[2], ne, max(fdev[FREE, d], ftask[READY, r]), seq, np.int64(START), d)
            seq += 1
    else:
        itask[NEXT, idev[TAIL, d]] = r
    idev[TAIL, d] = r
    return seq, ne


@njit(cache=True)
def _event(state, ev, seq, ne, ovh, of) -> tuple:
    """The clock's next event (Clock.wait): a device starts its next request, or a request ends and the driver
    hears of it at once (Driver.ended: the queue end becomes now plus what is still sent). (time, seq, events
    left, whether a request ended)."""
    fdev, idev, ftask, itask, heap, pos, offsets = state
    ne = _ev_pop(ev[0], ev[1], ev[2], ne)
    now, what, j = ev[1][ne], ev[0][ne, 0], ev[0][ne, 1]
    if what == START:
        r = idev[HEAD, j]
        idev[HEAD, j] = itask[NEXT, r]
        ftask[BEGAN, r], idev[RUNNING, j] = now, r
        ne = _ev_push(ev[0], ev[1], ev[2], ne, now + max(0.0, ftask[DUR, r]), seq, np.int64(END), j)
        return now, seq + 1, ne, False
    r, idev[RUNNING, j] = idev[RUNNING, j], -1
    fdev[FREE, j] = now + ovh[j]
    if idev[HEAD, j] >= 0:
        ne = _ev_push(ev[0], ev[1], ev[2], ne, max(fdev[FREE, j], ftask[READY, idev[HEAD, j]]), seq, np.int64(START), j)
        seq += 1
    fdev[QUEUED, j] -= ftask[COST, r]
    fdev[QE, j] = now + max(0.0, fdev[QUEUED, j])
    idev[BUSY, j] -= 1
    _resift(heap, pos, offsets[of[j]], offsets[of[j] + 1], j, fdev[QE], idev[BUSY])
    ftask[ENDED, r] = now
    return now, seq, ne, True


@njit(cache=True)
def _simulate(kind, arrival, pred, tr, delay, of, members, offsets, ovh, alpha, beta):
    """The driver's loop (Driver.run) over requests in placement order: place those that have arrived by now,
    then run the clock to the next end the driver hears of, or to the next arrival."""
    n, nd = len(kind), len(of)
    heap, pos = members.copy(), np.empty(nd, dtype=np.int64)
    for s in range(nd):
        pos[heap[s]] = s
    fdev, idev = np.zeros((3, nd)), np.full((4, nd), -1, dtype=np.int64)
    idev[BUSY] = 0
    ftask, itask = np.full((5, n), np.nan), np.full((2, n), -1, dtype=np.int64)
    state = (fdev, idev, ftask, itask, heap, pos, offsets)
    cap = 2 * nd + 2  # per device at most one start and one end pending
    ev = (np.empty((cap, 2), dtype=np.int64), np.empty(cap), np.empty(cap, dtype=np.int64))
    seq, ne, ai, done, now = np.int64(0), np.int64(0), np.int64(0), np.int64(0), 0.0
    while done < n:
        while ai < n and arrival[ai] <= now:
            p, d = _place(kind[ai], now, pred, tr, heap, offsets, fdev, ovh, alpha, beta)
            seq, ne = _send(ai, kind[ai], now, p, d, pred, tr, delay, state, ev, seq, ne, ovh)
            ai += 1
        until = arrival[ai] if ai < n else np.inf
        heard = False
        while ne > 0 and ev[1][0] <= until and not heard:
            now, seq, ne, heard = _event(state, ev, seq, ne, ovh, of)
        if heard:
            done += 1
        else:
            if ai >= n and ne == 0:
                break
            now = max(now, until)
    return ftask[BEGAN], ftask[ENDED], itask[WHERE]
