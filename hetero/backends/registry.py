"""Backends by name: the built-ins below, plus any third-party package's `hetero.backends` entry points.

A plugin package declares, in its pyproject.toml,
    [project.entry-points."hetero.backends"]
    mydev = "my_package.my_module:MyBackend"
and `mydev` then appears in bench.run and the scheduler with no change to this repository.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from hetero.backends.base import Backend
from hetero.errors import HeteroError, choices

# name -> "module:Class"; modules are imported only when the backend is asked for.
BUILTIN = {
    "numpy": "hetero.backends.numpy_ref:NumpyBackend",
    "numba": "hetero.backends.numba_cpu:NumbaBackend",
    "torch": "hetero.backends.torch_peer:TorchCPUBackend",
    "torch-cuda": "hetero.backends.torch_peer:TorchCUDABackend",
    "opencl": "hetero.backends.opencl:OpenCLBackend",
    "fpga-emu": "hetero.backends.fpga_emu:FpgaEmuBackend",
    "cupy": "hetero.backends.cupy_gpu:CupyBackend",
    "null": "hetero.backends.null:NullBackend",
}
HIDDEN = {"null"}  # test helpers: runnable by name, never picked by default


def _plugins() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group="hetero.backends")}


def plugin_sources() -> dict[str, dict]:
    """Each plugin backend's entry point and the distribution (and version) that declares it, for meta.json."""
    out = {}
    for ep in entry_points(group="hetero.backends"):
        dist = getattr(ep, "dist", None)
        out[ep.name] = {
            "target": ep.value,
            "distribution": dist.name if dist else None,
            "version": dist.version if dist else None,
        }
    return out


def _existing_builtins() -> dict[str, str]:
    """Built-ins whose module exists in this checkout (later issues add opencl, fpga-emu, cupy)."""
    from importlib.util import find_spec

    return {n: t for n, t in BUILTIN.items() if find_spec(t.partition(":")[0]) is not None}


def names(include_hidden: bool = False) -> list[str]:
    found = {**_existing_builtins(), **_plugins()}
    return [n for n in found if include_hidden or n not in HIDDEN]


def backend_class(name: str) -> type[Backend]:
    target = {**_existing_builtins(), **_plugins()}.get(name)
    if target is None:
        raise choices("backend", name, names())
    module, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except Exception as exc:  # a plugin that fails to import is reported, not raised from deep inside
        raise HeteroError(f"backend {name!r} ({target}) failed to load: {type(exc).__name__}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise HeteroError(f"backend {name!r} ({target}) is not a hetero.backends.base.Backend subclass")
    return cls


def get(name: str, **kwargs) -> Backend:
    return backend_class(name)(**kwargs)


def listing() -> list[tuple[str, bool, str]]:
    """(name, available, reason) for every backend, hidden ones excluded."""
    rows = []
    for name in names():
        try:
            reason = backend_class(name).unavailable()
        except HeteroError as exc:
            reason = str(exc)
        rows.append((name, reason is None, reason or ""))
    return rows
