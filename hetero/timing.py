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


def measure(
    kernel, warmup_s: float = WARMUP_S, budget_s: float = 0.2, min_reps: int = MIN_REPS, max_reps: int = 1000
) -> Measurement:
    """Call kernel() once (timed as first call), warm up for warmup_s, then repeat until budget_s of wall time
    is spent and at least min_reps samples exist."""
    m = Measurement()
    t0 = time.perf_counter()
    kernel()
    m.first_call_s = time.perf_counter() - t0
    deadline = time.perf_counter() + warmup_s
    while time.perf_counter() < deadline:
        kernel()
    deadline = time.perf_counter() + budget_s
    while len(m.samples) < max_reps and (len(m.samples) < min_reps or time.perf_counter() < deadline):
        m.samples.append(kernel())
    return m
