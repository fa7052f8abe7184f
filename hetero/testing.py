"""One parity helper for every backend (after CuPy's numpy_cupy_allclose): run a case on a backend and compare
with the float64 NumPy reference. Plugin authors can use it in their own tests."""
from __future__ import annotations

from hetero.backends import registry
from hetero.workloads import Case, check, get


def available_backends(include_hidden: bool = False) -> list[tuple[str, str | None]]:
    """(name, reason it is unavailable or None) for every registered backend."""
    out = []
    for name in registry.names(include_hidden):
        try:
            out.append((name, registry.backend_class(name).unavailable()))
        except Exception as exc:  # a plugin that fails to import is a reason, not a crash here
            out.append((name, str(exc)))
    return out


def parity(backend: str, case: Case, seed: int = 0, **backend_kwargs) -> tuple[bool, float, float]:
    """(correct, max_abs_err, max_rel_err) of `backend` on `case` against the reference."""
    workload = get(case.workload)
    inputs = workload.make_inputs(case, seed)
    kernel = registry.get(backend, **backend_kwargs).prepare(case, inputs)
    kernel()
    return check(kernel.result(), workload.reference(case, inputs), case.dtype)
