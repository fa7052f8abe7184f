"""What every workload shares: a frozen Case (what is run), presets, dtypes and tolerances.

A workload is described once and used by every backend: its NumPy reference, FLOP and byte counts, seeded
inputs and tolerances live here and in the workload's own file, never in a backend.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from hetero.errors import HeteroError, choices

# Relative tolerance per dtype, applied as |out - ref| <= tol * (|ref| + rms(ref)): the rms term keeps
# elements whose reference is near zero from failing on rounding that is tiny next to the output's scale.
# int8: none. Its kernels return the int32 products of int8 operands, exact, checked against the integer
# reference (workloads.quant); what quantizing cost is reported apart (quant_err), never a gate.
TOLERANCE = {"float32": 2e-4, "tf32": 5e-3, "float16": 1e-2, "bfloat16": 4e-2, "int8": 0.0}
DTYPES = tuple(TOLERANCE)
ITEMSIZE = {"float32": 4, "tf32": 4, "float16": 2, "bfloat16": 2, "int8": 1}


def round_to_dtype(x: np.ndarray, dtype: str) -> np.ndarray:
    """float32 values exactly representable in `dtype`, so every backend and the reference see the same numbers.

    Inputs travel as float32 (NumPy has no bfloat16); a backend casts them to its own 16-bit type losslessly.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    if dtype == "float16":
        return x.astype(np.float16).astype(np.float32)
    if dtype == "bfloat16":  # round-to-nearest-even on the top 16 bits of the float32 pattern
        bits = x.view(np.uint32).astype(np.uint64)
        bits = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
        return bits.astype(np.uint32).view(np.float32)
    return x


@dataclass(frozen=True)
class Case:
    """One thing to run: workload, its parameters (dims and options, in the workload's order) and dtype."""

    workload: str
    params: tuple[tuple[str, int], ...]
    dtype: str = "float32"
    preset: str | None = None

    @property
    def p(self) -> dict[str, int]:
        return dict(self.params)

    @property
    def shape(self) -> str:
        """Compact label used in tables and result files, e.g. '4x12x512x64 causal'."""
        return get(self.workload).label(self.p)


@dataclass(frozen=True)
class Preset:
    name: str
    params: dict
    source: str  # the model or benchmark the shape comes from
    groups: frozenset = field(default_factory=lambda: frozenset({"default"}))


class Workload:
    """Subclasses set name, dims (required ints), options (name -> default int), presets; and implement
    make_inputs, reference, flops, bytes_moved, from_arrays."""

    name: str
    dims: tuple[str, ...]
    options: dict[str, int] = {}
    presets: tuple[Preset, ...] = ()
    description: str = ""

    # -- cases -------------------------------------------------------------------------------------
    def case(self, params: dict, dtype: str = "float32", preset: str | None = None) -> Case:
        if dtype not in DTYPES:
            raise choices("dtype", dtype, DTYPES)
        full = {**self.options, **params}
        unknown = set(full) - set(self.dims) - set(self.options)
        if unknown:
            raise HeteroError(
                f"{self.name}: unknown parameter {sorted(unknown)[0]!r}; "
                f"valid: {', '.join(self.dims + tuple(self.options))}"
            )
        missing = [d for d in self.dims if d not in full]
        if missing:
            raise HeteroError(f"{self.name}: missing dimension {missing[0]!r}; give all of {'x'.join(self.dims)}")
        for k, v in full.items():
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise HeteroError(f"{self.name}: {k}={v!r} must be an integer")
        self.validate({k: int(v) for k, v in full.items()})
        ordered = tuple((k, int(full[k])) for k in self.dims + tuple(self.options))
        return Case(self.name, ordered, dtype, preset)

    def validate(self, p: dict) -> None:
        for d in self.dims:
            if p[d] < 1:
                raise HeteroError(f"{self.name}: {d}={p[d]} must be >= 1")

    def parse_shape(self, text: str) -> dict:
        """'4x12x512x64' (dims in order, as in --help) and/or 'causal=1,stride=2' options, comma separated."""
        params: dict = {}
        for part in filter(None, (s.strip() for s in text.split(","))):
            if "=" in part:
                k, _, v = part.partition("=")
                if not re.fullmatch(r"-?\d+", v.strip()):
                    raise self._bad_shape(text)
                params[k.strip()] = int(v)
            elif re.fullmatch(r"\d+(x\d+)*", part):
                nums = [int(n) for n in part.split("x")]
                if len(nums) != len(self.dims):
                    raise self._bad_shape(text)
                params.update(zip(self.dims, nums))
            elif part in self.options:  # a bare flag such as 'causal'
                params[part] = 1
            else:
                raise self._bad_shape(text)
        return params

    def _bad_shape(self, text: str) -> HeteroError:
        opts = ",".join(f"{k}={v}" for k, v in self.options.items())
        example = "x".join(self.dims)
        return HeteroError(
            f"malformed --shape {text!r} for {self.name}; expected {example}"
            + (f" optionally followed by ,{opts}" if opts else "")
        )

    def preset_cases(self, names_or_group: str, dtype: str = "float32") -> list[Case]:
        """A comma list of preset names, or a group name ('default', 'quick', 'gpu', 'all')."""
        groups = {g for p in self.presets for g in p.groups} | {"all"}
        out = []
        for name in filter(None, names_or_group.split(",")):
            if name in groups:
                out += [self.case(p.params, dtype, p.name) for p in self.presets if name == "all" or name in p.groups]
            else:
                by_name = {p.name: p for p in self.presets}
                if name not in by_name:
                    raise choices(f"{self.name} preset", name, sorted(groups) + list(by_name))
                out.append(self.case(by_name[name].params, dtype, name))
        return out

    def label(self, p: dict) -> str:
        dims = "x".join(str(p[d]) for d in self.dims)
        opts = [f"{k}={v}" for k, v in p.items() if k in self.options and v != self.options[k]]
        return " ".join([dims] + opts)

    # What a case uses beyond the plain layout, by name, so a backend can say what it runs (Backend.features).
    FEATURES: dict[str, str] = {}

    def features(self, p: dict) -> frozenset[str]:
        """The FEATURES (names) case parameters `p` use; a backend must support each to run the case."""
        return frozenset()

    # -- per-workload ------------------------------------------------------------------------------
    def make_inputs(self, case: Case, seed: int = 0) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def reference(self, case: Case, inputs: dict[str, np.ndarray], dtype=np.float64) -> np.ndarray:
        raise NotImplementedError

    def out_shape(self, p: dict) -> tuple[int, ...]:
        raise NotImplementedError

    def flops(self, p: dict) -> float:
        raise NotImplementedError

    def bytes_moved(self, p: dict, itemsize: int) -> float:
        raise NotImplementedError

    def workspace_elems(self, p: dict) -> float:
        """float32 elements of the largest scratch buffer a built-in backend allocates besides inputs and output
        (hetero.memory's estimate); 0 where none is larger than those."""
        return 0.0

    def call(self, **kwargs) -> tuple[dict | None, dict, tuple[int, ...]]:
        """PyTorch-style keyword arguments -> (params, float32 inputs, the output shape PyTorch returns).

        params is None when that output is empty or all zeros (a zero-sized dimension): nothing needs to run.
        Raises a one-line HeteroError naming the argument wherever PyTorch raises."""
        raise NotImplementedError

    def from_arrays(self, **kwargs) -> tuple[dict, dict[str, np.ndarray]]:
        """(params, inputs) of call(); arguments with an empty output have no case and are refused here."""
        params, inputs, shape = self.call(**kwargs)
        if params is None:
            raise HeteroError(f"{self.name}: the output {shape} is empty or all zeros; there is no case to run")
        return params, inputs

    # -- shared helpers ----------------------------------------------------------------------------
    @staticmethod
    def random(rng: np.random.Generator, shape, dtype: str, scale: float = 1.0) -> np.ndarray:
        return round_to_dtype(rng.standard_normal(shape, dtype=np.float32) * scale, dtype)

    @staticmethod
    def tensor(name: str, value, min_ndim: int = 0, allow_bool: bool = False) -> np.ndarray:
        """`value` as a NumPy array of a floating (or, where allowed, boolean) dtype, its dtype kept."""
        try:
            arr = np.asarray(value)
        except Exception as exc:  # e.g. ragged lists
            raise HeteroError(f"{name} is not an array ({exc})") from None
        if arr.ndim < min_ndim:
            raise HeteroError(
                f"{name} must have at least {min_ndim} dimension{'s' * (min_ndim > 1)}, got shape {arr.shape}"
            )
        if not (np.issubdtype(arr.dtype, np.floating) or (allow_bool and arr.dtype == np.bool_)):
            kinds = "boolean or floating point" if allow_bool else "floating point"
            raise HeteroError(f"{name} must be {kinds}, got {arr.dtype}")
        return arr

    @staticmethod
    def same_dtype(**arrays: np.ndarray) -> None:
        """PyTorch refuses operands of different dtypes (float64 with float32): so does hetero."""
        dts = {n: a.dtype for n, a in arrays.items()}
        if len(set(dts.values())) > 1:
            raise HeteroError("operands must share one dtype, got " + ", ".join(f"{n} {d}" for n, d in dts.items()))

    @staticmethod
    def array(name: str, value, ndim: int) -> np.ndarray:
        try:
            arr = np.asarray(value)
        except Exception as exc:  # e.g. ragged lists
            raise HeteroError(f"{name} is not an array ({exc})") from None
        if arr.ndim != ndim:
            raise HeteroError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
        if not np.issubdtype(arr.dtype, np.floating):
            raise HeteroError(f"{name} must be floating point, got {arr.dtype}")
        return np.ascontiguousarray(arr, dtype=np.float32)


# name -> workload; hetero.workloads (the package) registers the built-in ones on import, before any of its modules
# can be used, so a Case finds its workload here without importing the package that imports this module.
WORKLOADS: dict[str, Workload] = {}


def get(name: str) -> Workload:
    if name not in WORKLOADS:
        raise choices("workload", name, WORKLOADS)
    return WORKLOADS[name]


def check(out: np.ndarray, ref: np.ndarray, dtype: str) -> tuple[bool, float, float]:
    """(correct, max_abs_err, max_rel_err) of a backend's output against the float64 reference.

    Correct: non-finite (NaN or inf, of either kind) exactly where the reference is, and every other element
    within the dtype's tolerance. Errors are measured on the elements where the reference is finite."""
    out = np.asarray(out, dtype=np.float64)
    if out.shape != ref.shape:
        return False, float("inf"), float("inf")
    finite = np.isfinite(ref)
    if not np.array_equal(np.isfinite(out), finite):
        return False, float("nan"), float("nan")
    if not finite.all():
        out, ref = out[finite], ref[finite]
    err = np.abs(out - ref)
    scale = np.abs(ref) + np.sqrt(np.mean(ref * ref)) + 1e-30
    ok = bool((err <= TOLERANCE[dtype] * scale).all())
    return ok, float(err.max(initial=0.0)), float((err / scale).max(initial=0.0))
