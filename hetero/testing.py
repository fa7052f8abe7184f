"""One parity helper for every backend (after CuPy's numpy_cupy_allclose): run a case on a backend and compare
with the float64 NumPy reference. Plugin authors can use it in their own tests."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from hetero.backends import registry
from hetero.workloads import Case, check, get, quant


def available_backends(include_hidden: bool = False) -> list[tuple[str, str | None]]:
    """(name, reason it is unavailable or None) for every registered backend."""
    out = []
    for name in registry.names(include_hidden):
        try:
            out.append((name, registry.backend_class(name).unavailable()))
        except Exception as exc:  # a plugin that fails to import is a reason, not a crash here
            out.append((name, str(exc)))
    return out


def parity(
    backend: str,
    case: Case,
    seed: int = 0,
    nonfinite: Iterable[tuple[str, int, float]] = (),
    scheme: str = "channel",
    **backend_kwargs,
) -> tuple[bool, float, float]:
    """(correct, max_abs_err, max_rel_err) of `backend` on `case` against the reference (see workloads.check:
    non-finite exactly where the reference is, the rest within tolerance; int8: the inputs quantized under
    `scheme`, the output equal to their integer product).

    nonfinite: (input name, flat index, value) to write into the seeded inputs first, e.g. ("key", 7, nan);
    an index past the input's end wraps around."""
    workload = get(case.workload)
    inputs = workload.make_inputs(case, seed)
    for name, index, value in nonfinite:
        x = inputs[name].copy()
        x.reshape(-1)[index % x.size] = value
        inputs[name] = x
    if case.dtype == "int8":  # the int8 operands and their exact integer product (workloads.quant)
        qz = quant.quantize(case, inputs, scheme)
        inputs, ref = qz.inputs, quant.int_reference(case, qz)
    else:
        with np.errstate(invalid="ignore", over="ignore"):  # the reference meeting NaN and inf is the point here
            ref = workload.reference(case, inputs)
    kernel = registry.get(backend, **backend_kwargs).prepare(case, inputs)
    kernel()
    return check(kernel.result(), ref, case.dtype)
