"""OpenCL drivers that pip installed into this environment, made visible to pyopencl's ICD loader.

The CPU driver pyopencl's wheels bring (PoCL 3.0, LLVM 14) cannot compile for AMD Zen 5 (pocl/pocl#1049). Intel's
OpenCL CPU runtime (`pip install intel-opencl-rt intel-cmplr-lib-rt`, the `opencl-cpu` extra) can, on AMD CPUs too,
but pip leaves its .icd file naming the path the wheel was built at (a conda post-link step rewrites it; pip runs
none), and the ICD loader bundled with pyopencl reads only /etc/OpenCL/vendors (or $OCL_ICD_VENDORS instead) and
its own folder. So, unless the user set OCL_ICD_VENDORS, `register()` writes a vendors folder under the hetero cache
naming the drivers found in <prefix>/lib plus the system's .icd files, and points OCL_ICD_VENDORS at it. The loader
reads it when pyopencl first asks for platforms, so this runs before that (opencl_util.all_devices).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ENV = "OCL_ICD_VENDORS"
DRIVERS = {"libintelocl.so": "intel-opencl-rt"}     # driver library in <prefix>/lib -> the pip package with it
SYSTEM_VENDORS = Path("/etc/OpenCL/vendors")


def found(prefix: Path | None = None) -> list[Path]:
    """The pip-installed driver libraries in this environment."""
    lib = Path(prefix or sys.prefix) / "lib"
    return [lib / name for name in DRIVERS if (lib / name).exists()]


def register(prefix: Path | None = None, cache: Path | None = None) -> Path | None:
    """Point OCL_ICD_VENDORS at a folder naming this environment's pip-installed drivers and the system's; the
    folder, or None when the user set OCL_ICD_VENDORS or there is no such driver (nothing changes then)."""
    from hetero.cachefile import cache_dir
    from hetero.results import atomic_write

    drivers = found(prefix)
    if os.environ.get(ENV) or not drivers:
        return None
    folder = (cache or cache_dir()) / "ocl-vendors" / _slug(Path(prefix or sys.prefix))     # one per environment
    folder.mkdir(parents=True, exist_ok=True)
    icds = {f"{d.name.split('.')[0]}.icd": f"{d}\n" for d in drivers}
    if SYSTEM_VENDORS.is_dir():
        icds.update({p.name: p.read_text() for p in SYSTEM_VENDORS.glob("*.icd") if p.name not in icds})
    for name, text in icds.items():
        path = folder / name
        if not path.exists() or path.read_text() != text:
            atomic_write(path, text)
    for stale in folder.glob("*.icd"):       # a driver uninstalled since: the loader would try it in vain
        if stale.name not in icds:
            stale.unlink(missing_ok=True)
    os.environ[ENV] = str(folder)
    return folder


def _slug(path: Path) -> str:
    return str(path.resolve()).strip("/").replace("/", "_") or "root"
