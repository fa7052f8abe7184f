"""Timing that can be trusted: warm-up and repetitions budgeted in time (as triton's do_bench), raw samples
kept, median and IQR computed from them, a warning when IQR/median > 10% (as torch.utils.benchmark does).

The clock is the kernel's own (Kernel.__call__ returns seconds: CUDA events, OpenCL profiling events, the FPGA
model, or wall clock for host code); this module only decides how many times to ask.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

NOISY = 0.10  # IQR/median above this is flagged


@dataclass
class Measurement:
    samples: list[float] = field(default_factory=list)
    first_call_s: float = 0.0  # wall time of the first call: compile/JIT/cache load plus one run

    @property
    def median(self) -> float:
        return float(np.median(self.samples))

    @property
    def iqr(self) -> float:
        q1, q3 = np.percentile(self.samples, [25, 75])
        return float(q3 - q1)

    @property
    def reps(self) -> int:
        return len(self.samples)

    @property
    def noisy(self) -> bool:
        return self.reps >= 4 and self.iqr > NOISY * self.median


# Warm-up before timed reps. OpenBLAS's idle workers spin for ~0.1 s after each call before they sleep (its thread
# timeout), and the float64 reference and a NumPy peer run just before a backend is timed: with a shorter warm-up the
# first timed reps run beside a spinning thread, on a core the kernel wants, and take several times their time.
WARMUP_S = 0.12


# The fewest timed repetitions a row gets, whatever the budget: IQR needs 4 to flag a noisy row, and a
# Mann-Whitney U test (bench.compare) of 5 against 5 samples can reach p < 0.01; of 3 against 3 never p < 0.1.
MIN_REPS = 5


# Turns a case's backends take at the timing (measure_interleaved): each gets its budget in this many slices.
ROUNDS = 4


def measure(
    kernel, warmup_s: float = WARMUP_S, budget_s: float = 0.2, min_reps: int = MIN_REPS, max_reps: int = 1000
) -> Measurement:
    """Call kernel() once (timed as first call), warm up for warmup_s, then repeat until budget_s of wall time
    is spent and at least min_reps samples exist."""
    m = Measurement()
    _turn(kernel, m, warmup_s, budget_s, min_reps, max_reps, first=True)
    return m


def measure_interleaved(
    kernels: list, warmup_s: float = WARMUP_S, budget_s: float = 0.2, min_reps: int = MIN_REPS, rounds: int = ROUNDS
) -> list:
    """measure() for the kernels of one case, taken in turns: `rounds` times, each kernel in turn warms up for
    warmup_s (so the previous one's idle threads have stopped spinning) and adds its share of the samples
    (budget_s / rounds of wall time, at least ceil(min_reps / rounds) samples). A slow spell of the machine (a
    co-tenant taking a core for a second) then falls on every backend of the case, not on one, and their ratios
    hold. Per kernel: its Measurement, or the exception one of its calls raised (it then leaves the turns)."""
    out: list = [Measurement() for _ in kernels]
    per = -(-min_reps // rounds)
    for r in range(rounds):
        for i, kernel in enumerate(kernels):
            if isinstance(out[i], Measurement):
                try:
                    _turn(kernel, out[i], warmup_s, budget_s / rounds, per, 1000 // rounds, first=r == 0)
                except Exception as exc:  # reported on its row; the other kernels go on
                    out[i] = exc
    return out


def _turn(kernel, m: Measurement, warmup_s, budget_s, min_reps, max_reps, first: bool) -> None:
    """One turn at the kernel: (the first, timed as first_call_s), a warm-up of warmup_s, then samples until
    budget_s of wall time is spent and at least min_reps (at most max_reps) were added."""
    if first:
        t0 = time.perf_counter()
        kernel()
        m.first_call_s = time.perf_counter() - t0
    deadline = time.perf_counter() + warmup_s
    while time.perf_counter() < deadline:
        kernel()
    deadline = time.perf_counter() + budget_s
    n0 = len(m.samples)
    while len(m.samples) - n0 < max_reps and (len(m.samples) - n0 < min_reps or time.perf_counter() < deadline):
        m.samples.append(kernel())
