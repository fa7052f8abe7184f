"""Memory estimates made before allocating: a size that cannot fit is refused in seconds with one line naming the
estimate and what is free, instead of allocating until MemoryError or until the machine swaps.

Estimates, not measurements: each counts the arrays a run is known to hold at once, and a caller can pass
force=True (the CLIs' --force) to try anyway.
"""

from __future__ import annotations

import math

import psutil

from hetero.errors import HeteroError
from hetero.workloads import Case, get

# bench.simulate: bytes per simulated task and per simulated device (the Task, its events and each policy's
# bookkeeping; a DeviceState, its queue and its row of the time table). Rounded up to twice what the simulator
# was measured to hold, so these over- rather than under-estimate.
SIM_BYTES_PER_TASK = 4096
SIM_BYTES_PER_DEVICE = 4096


def available_bytes() -> int:
    return psutil.virtual_memory().available


def human(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1024
    return f"{nbytes:.3g} PiB"


def case_bytes(case: Case, backends: int = 1) -> float:
    """Estimated peak bytes of checking and timing one case on `backends` backends (bench.run holds each
    backend's prepared kernel until the case's timing, taken in turns, ends).

    With I input and O output elements and W elements of the largest workspace a built-in backend allocates:
    inputs (float32, 4 B) + the reference's float64 copies of them (8 B) per input element; the float64
    reference (8 B) + check()'s three float64 temporaries (24 B) per output element; and per backend its copy of
    the inputs (device buffers, 4 B), its float32 output (4 B) and 4 B per workspace element.
    """
    w, p = get(case.workload), case.p
    out = float(math.prod(w.out_shape(p)))
    inp = w.bytes_moved(p, 1) - out
    return inp * (4 + 8) + out * (8 + 24) + backends * (4 * inp + 4 * out + 4.0 * w.workspace_elems(p))


def simulation_bytes(tasks: int, devices: int) -> float:
    """Estimated peak bytes of simulating `tasks` tasks on `devices` devices (bench.simulate)."""
    return tasks * SIM_BYTES_PER_TASK + devices * SIM_BYTES_PER_DEVICE


def check_fits(what: str, need: float, force: bool = False) -> None:
    """HeteroError when `need` bytes (an estimate) exceed the memory available now, unless force."""
    free = available_bytes()
    if need > free and not force:
        raise HeteroError(
            f"{what} needs about {human(need)} of memory (estimated); {human(free)} is available; "
            "use a smaller size, or --force to try anyway"
        )
