"""OpenCL support for the opencl and fpga-emu backends and their kernels: making pip-installed drivers visible,
picking a device, one context and profiling queue per device, programs cached per (device, source, defines),
OpenCL errors as one-line HeteroErrors, profiling-event seconds, and the autotuner's on-disk memory
(opencl-tuning.json in hetero.cachefile.cache_dir(): $HETERO_CACHE_DIR, else the platform's user cache folder).

pyopencl is imported inside the functions, so importing this module works without it.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from functools import cache
from pathlib import Path

from hetero import cachefile
from hetero.cachefile import CacheError, cache_dir
from hetero.errors import HeteroError

BUILD_OPTIONS = ("-cl-fast-relaxed-math", "-cl-mad-enable")
# -cl-fast-relaxed-math lets a driver trade the accuracy of exp and friends for speed. PoCL stays within float32's
# tolerance; Intel's CPU runtime does not (attention quick-odd: relative error 6.9e-4 against 2e-4), so on its
# platforms kernels build without it.
STRICT_MATH_PLATFORMS = ("Intel(R) OpenCL",)
ENV_DEVICE = "HETERO_OPENCL_DEVICE"
ENV_VENDORS = "OCL_ICD_VENDORS"
DRIVERS = {"libintelocl.so": "intel-opencl-rt"}  # driver library in <prefix>/lib -> the pip package with it
SYSTEM_VENDORS = Path("/etc/OpenCL/vendors")


def unavailable() -> str | None:
    """None when an OpenCL device exists and its compiler builds a kernel, else why not."""
    try:
        import pyopencl  # noqa: F401
    except ImportError:
        return "pyopencl not installed (pip install pyopencl pocl-binary-distribution)"
    if not all_devices():
        return "no OpenCL platform"
    try:
        device = pick_device()
    except HeteroError as exc:
        return str(exc)
    return cannot_build(device)


def build_options(device) -> tuple[str, ...]:
    strict = device.platform.name.strip() in STRICT_MATH_PLATFORMS
    return tuple(o for o in BUILD_OPTIONS if not (strict and o == "-cl-fast-relaxed-math"))


_PROBE = "__kernel void probe(__global float *x) { x[get_global_id(0)] *= 2.0f; }"
_PROBED: dict = {}  # device_key -> why its compiler cannot build (None: it can), probed once per process


def cannot_build(device) -> str | None:
    """Why the device's compiler cannot build a one-line kernel (probed once per process), or None."""
    key = device_key(device)
    if key not in _PROBED:
        _PROBED[key] = _probe(device)
    return _PROBED[key]


def _probe(device) -> str | None:
    """Build a one-line kernel: a driver can list a device its compiler cannot target.

    PoCL 3.0's bundled LLVM 14 does not know AMD Zen 5 (family 0x1A), calls it 'generic', and then rejects that
    name (pocl/pocl#1049): every build fails with "unknown target CPU 'generic'"."""
    import pyopencl as cl

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cl.Program(cl.Context([device]), _PROBE).build(options=list(build_options(device)))
    except cl.Error as exc:
        log = " ".join(ln.strip() for ln in str(exc).splitlines() if "error:" in ln)[:200]
        hint = " (its LLVM does not know this CPU; PoCL issue #1049)" if "unknown target CPU" in log else ""
        fix = (
            f"pip install intel-opencl-rt intel-cmplr-lib-rt (Intel's CPU driver, which hetero finds), or "
            f"choose another device with {ENV_DEVICE}"
            if hint
            else f"choose another device with {ENV_DEVICE}"
        )
        return (
            f"{device.name.strip()} ({device.platform.name.strip()}) cannot compile OpenCL kernels here: "
            f"{log or error_name(exc)}{hint}; {fix}"
        )
    return None


def all_devices() -> list[tuple[str, object]]:
    """[("platform:device", cl.Device)] for every device of every platform, in the drivers' order."""
    import pyopencl as cl

    register_drivers()  # before the loader's first look (it reads its vendor list once)
    try:
        platforms = cl.get_platforms()
    except cl.Error:  # the ICD loader says "no platform" with an error (PLATFORM_NOT_FOUND_KHR)
        return []
    found = []
    for pi, platform in enumerate(platforms):
        try:
            devices = platform.get_devices()
        except cl.Error:
            continue
        found += [(f"{pi}:{di}", d) for di, d in enumerate(devices)]
    return found


def describe(label: str, device) -> str:
    return f"{label} {device.name.strip()} ({device.platform.name.strip()})"


def pick_device(choice: str | None = None):
    """The device named by `choice`, else $HETERO_OPENCL_DEVICE, else the first one whose compiler builds (the
    first one when none does: unavailable() then says why).

    choice: "platform:device" ("0:1"), a flat index over all devices ("2"), or a name substring ("epyc").
    """
    choice = choice if choice not in (None, "") else os.environ.get(ENV_DEVICE) or None
    devices = all_devices()
    if not devices:
        raise HeteroError("no OpenCL platform")
    if choice is None:
        return next((d for _, d in devices if cannot_build(d) is None), devices[0][1])
    text = str(choice).strip()
    for i, (label, dev) in enumerate(devices):
        if text == label or text == str(i):
            return dev
    for _, dev in devices:
        if text.lower() in f"{dev.name} {dev.platform.name}".lower():
            return dev
    avail = "; ".join(describe(label, d) for label, d in devices)
    raise HeteroError(f"no OpenCL device matches {text!r}; available: {avail}")


def device_key(device) -> str:
    return f"{device.platform.name.strip()}|{device.name.strip()}|{device.driver_version.strip()}"


def error_name(exc) -> str:
    """CL_OUT_OF_RESOURCES and friends from a pyopencl.Error (its code), or the exception's type."""
    import pyopencl as cl

    try:
        code = exc.args[0].code() if callable(exc.args[0].code) else exc.args[0].code
    except Exception:
        code = getattr(exc, "code", None)
    names = {v: k for k, v in vars(cl.status_code).items() if isinstance(v, int)}
    return f"CL_{names[code]}" if code in names else type(exc).__name__


def wrap(exc, what: str) -> HeteroError:
    """One line naming the OpenCL error and what was being done; the build log, if any, after it."""
    text = str(exc)
    log = text.split("\n", 1)[1].strip() if "\n" in text else ""
    msg = f"OpenCL {what} failed: {error_name(exc)}"
    return HeteroError(msg + (f"\n{log}" if log else ""))


class Runtime:
    """One device's context, profiling queue and program cache."""

    def __init__(self, device):
        import pyopencl as cl

        self.cl, self.device = cl, device
        self.ctx = cl.Context([device])
        self.queue = cl.CommandQueue(self.ctx, properties=cl.command_queue_properties.PROFILING_ENABLE)
        self._programs: dict = {}

    def program(self, path: Path, defines: dict | None = None):
        """The built program for `path` with `defines` (-D name=value), cached per (source, defines)."""
        source = Path(path).read_text()
        opts = build_options(self.device) + tuple(f"-D{k}={v}" for k, v in sorted((defines or {}).items()))
        key = (source, opts)
        if key not in self._programs:
            try:
                with warnings.catch_warnings():  # PoCL's harmless warnings come back as CompilerWarning
                    warnings.simplefilter("ignore")
                    prg = self.cl.Program(self.ctx, source).build(options=list(opts))
            except self.cl.Error as exc:
                defs = " ".join(o for o in opts if o.startswith("-D")) or "no defines"
                raise wrap(exc, f"build of {Path(path).name} with {defs}") from None
            self._programs[key] = _Kernels(prg)
        return self._programs[key]

    def buffer(self, array=None, nbytes: int | None = None):
        mf = self.cl.mem_flags
        try:
            if array is not None:
                return self.cl.Buffer(self.ctx, mf.READ_WRITE | mf.COPY_HOST_PTR, hostbuf=array)
            return self.cl.Buffer(self.ctx, mf.READ_WRITE, max(int(nbytes), 4))
        except self.cl.Error as exc:
            raise wrap(exc, f"allocation of {array.nbytes if array is not None else nbytes} bytes") from None

    def read(self, out, buf):
        self.cl.enqueue_copy(self.queue, out, buf).wait()
        return out


class _Kernels:
    """A built program whose kernels are fetched once each (pyopencl warns when fetched repeatedly)."""

    def __init__(self, prg):
        self.prg, self._k = prg, {}

    def __getattr__(self, name):
        if name.startswith("_") or name == "prg":
            raise AttributeError(name)
        if name not in self._k:
            self._k[name] = getattr(self.prg, name)
        return self._k[name]


@cache
def runtime(device) -> Runtime:
    return Runtime(device)


def launch(rt: Runtime, kernel, gsize, lsize, *args):
    """Enqueue one kernel; OpenCL errors become HeteroErrors naming the kernel and the CL_ error."""
    try:
        return kernel(rt.queue, tuple(int(g) for g in gsize), lsize, *args)
    except rt.cl.Error as exc:
        raise wrap(exc, f"launch of {kernel.function_name} on {tuple(gsize)}") from None


def event_seconds(events) -> float:
    """Sum of the events' device times (profiling end - start), after waiting for the last."""
    events[-1].wait()
    return sum(e.profile.end - e.profile.start for e in events) * 1e-9


# -- autotuner memory -----------------------------------------------------------------------------------
def tuning_path() -> Path:
    return cache_dir() / "opencl-tuning.json"


def _parse_tuning(path: Path, data) -> dict:
    """{key: {"config": {name: int}, ...}} checked field by field (the kernels read "config"; "ms", "gflops" and
    "shape" record how the choice was made); CacheError naming the file and the field otherwise."""
    cachefile.mapping(path, "the file", data)
    for key, entry in data.items():
        where = f"entry {key!r}"
        cachefile.mapping(path, where, entry)
        extra = sorted(set(entry) - {"config", "ms", "gflops", "shape"})
        cachefile.field(path, where, extra, "no unknown fields", not extra)
        for name, value in cachefile.mapping(path, f"{where}.config", entry.get("config")).items():
            cachefile.integer(path, f"{where}.config.{name}", value, 1)
        for i, v in enumerate(cachefile.listing(path, f"{where}.ms", entry.get("ms", []))):
            cachefile.number(path, f"{where}.ms[{i}]", v)
        for name, v in cachefile.mapping(path, f"{where}.gflops", entry.get("gflops", {})).items():
            cachefile.number(path, f"{where}.gflops.{name}", v)
        for i, v in enumerate(cachefile.listing(path, f"{where}.shape", entry.get("shape", []))):
            cachefile.integer(path, f"{where}.shape[{i}]", v, 1)
    return data


def load_tuning(path: Path | None = None) -> dict:
    """The remembered choices; a missing file is empty, an unusable one is ignored with a one-line warning."""
    path = path or tuning_path()
    try:
        return cachefile.read(path, _parse_tuning) or {}
    except CacheError as exc:
        warnings.warn(f"ignoring corrupt OpenCL tuning file: {exc}; it will be rebuilt", stacklevel=2)
        return {}


def save_tuning(key: str, value: dict, path: Path | None = None) -> None:
    """Add key -> value to the file under its lock (a run tuning at the same time keeps its entries too); the
    file is replaced atomically, an unusable one kept as a .bak."""
    path = path or tuning_path()
    _parse_tuning(path, {key: value})  # never write what the next load would refuse
    warn = lambda m: warnings.warn(m, stacklevel=3)  # noqa: E731
    cachefile.update(
        path, _parse_tuning, lambda current: json.dumps({**(current or {}), key: value}, indent=1, sort_keys=True), warn
    )


# -- drivers pip installed ------------------------------------------------------------------------------
# The CPU driver pyopencl's wheels bring (PoCL 3.0, LLVM 14) cannot compile for AMD Zen 5 (pocl/pocl#1049). Intel's
# OpenCL CPU runtime (`pip install intel-opencl-rt intel-cmplr-lib-rt`, the `opencl-cpu` extra) can, on AMD CPUs
# too, but pip leaves its .icd file naming the path the wheel was built at (a conda post-link step rewrites it; pip
# runs none), and the ICD loader bundled with pyopencl reads only /etc/OpenCL/vendors (or $OCL_ICD_VENDORS instead)
# and its own folder. So, unless the user set OCL_ICD_VENDORS, register_drivers() writes a vendors folder under the
# hetero cache naming the drivers found in <prefix>/lib plus the system's .icd files, and points OCL_ICD_VENDORS at
# it. The loader reads it when pyopencl first asks for platforms, so all_devices() calls it before that.
def pip_drivers(prefix: Path | None = None) -> list[Path]:
    """The pip-installed driver libraries in this environment."""
    lib = Path(prefix or sys.prefix) / "lib"
    return [lib / name for name in DRIVERS if (lib / name).exists()]


def register_drivers(prefix: Path | None = None, cache: Path | None = None) -> Path | None:
    """Point OCL_ICD_VENDORS at a folder naming this environment's pip-installed drivers and the system's; the
    folder, or None when the user set OCL_ICD_VENDORS or there is no such driver (nothing changes then)."""
    from hetero.results import atomic_write

    drivers = pip_drivers(prefix)
    if os.environ.get(ENV_VENDORS) or not drivers:
        return None
    folder = (cache or cache_dir()) / "ocl-vendors" / _slug(Path(prefix or sys.prefix))  # one per environment
    folder.mkdir(parents=True, exist_ok=True)
    icds = {f"{d.name.split('.')[0]}.icd": f"{d}\n" for d in drivers}
    if SYSTEM_VENDORS.is_dir():
        icds.update({p.name: p.read_text() for p in SYSTEM_VENDORS.glob("*.icd") if p.name not in icds})
    for name, text in icds.items():
        path = folder / name
        if not path.exists() or path.read_text() != text:
            atomic_write(path, text)
    for stale in folder.glob("*.icd"):  # a driver uninstalled since: the loader would try it in vain
        if stale.name not in icds:
            stale.unlink(missing_ok=True)
    os.environ[ENV_VENDORS] = str(folder)
    return folder


def _slug(path: Path) -> str:
    return str(path.resolve()).strip("/").replace("/", "_") or "root"
