"""python -m bench.run: check every backend against the NumPy reference, then time it.

python -m bench.run --workload attention                 # default presets, every available backend
python -m bench.run --workload all --quick               # tiny shapes, seconds
python -m bench.run --workload matmul --shape 1024x1024x1024 --backends numba,torch
python -m bench.run --list                               # backends (with reasons), workloads, presets
"""

from __future__ import annotations

import sys

from tqdm import tqdm

from bench.cli import Parser, csv_list, main, nonneg_float, nonneg_int, output_args, run_folder, thread_count
from hetero.backends import registry
from hetero.blas_env import avx2_on_avx512_note, blas_report
from hetero.errors import HeteroError, choices
from hetero.memory import case_bytes, check_fits
from hetero.results import metadata, write_metadata, write_rows, write_samples
from hetero.runner import COLUMNS, RunConfig, run, warm_up
from hetero.tables import format_table
from hetero.timing import WARMUP_S
from hetero.workloads import DTYPES, WORKLOADS, get
from hetero.workloads.quant import SCHEMES


def parser() -> Parser:
    p = Parser(
        prog="python -m bench.run",
        description=__doc__.split("\n\n")[0],
        epilog="Shapes: "
        + "; ".join(
            f"{w.name} {'x'.join(w.dims)}" + "".join(f",{k}={v}" for k, v in w.options.items())
            for w in WORKLOADS.values()
        ),
        formatter_class=lambda prog: __import__("argparse").RawDescriptionHelpFormatter(prog, width=110),
    )
    p.add_argument(
        "--workload", default="all", help=f"one of {', '.join(WORKLOADS)}, a comma list, or all (default: all)"
    )
    p.add_argument("--backends", help="comma list (default: every available backend; see --list)")
    p.add_argument("--baseline", default="numpy", help="backend that speedups divide by (default: numpy)")
    p.add_argument(
        "--preset",
        default="default",
        help="preset names or a group: default, quick, gpu, extra, all (default: default)",
    )
    p.add_argument(
        "--shape",
        action="append",
        default=[],
        help="explicit shape, e.g. 4x12x512x64,causal=1 (repeatable; replaces --preset)",
    )
    p.add_argument("--dtype", default="float32", help=f"comma list of {', '.join(DTYPES)} (default: float32)")
    p.add_argument("--quant", default="channel", choices=SCHEMES, help="int8 scales: channel or tensor (docs/int8.md)")
    p.add_argument("--quick", action="store_true", help="tiny shapes and short timing budgets (CI, smoke tests)")
    p.add_argument(
        "--budget", type=nonneg_float, default=None, help="seconds of repetitions per measurement (default 0.3)"
    )
    p.add_argument(
        "--threads", type=thread_count, default=None, help="CPU threads per host backend (default: all cores)"
    )
    p.add_argument(
        "--opencl-device",
        default=None,
        help="OpenCL device for the opencl backend: index or name substring (env HETERO_OPENCL_DEVICE)",
    )
    p.add_argument(
        "--fpga-preset",
        default=None,
        help="accelerator model for fpga-emu: alveo-u250-fp32 (default), alveo-u250-int8, "
        "arria10-pac-fp32, stratix10-d5005-fp32 (env HETERO_FPGA_PRESET)",
    )
    output_args(p, "<date>-<time>")
    p.add_argument("--seed", type=nonneg_int, default=0, help="input seed (default 0)")
    p.add_argument(
        "--strict",
        action="store_true",
        help="a named backend (--backends, --baseline) that is unavailable, or any backend that fails, "
        "is an error (without --backends, unavailable backends are skipped)",
    )
    p.add_argument("--force", action="store_true", help="run shapes estimated not to fit in available memory")
    p.add_argument("--list", action="store_true", help="list backends, workloads and presets, then exit")
    return p


def list_everything() -> str:
    lines = ["backends:"]
    for name, ok, reason in registry.listing():
        lines.append(f"  {name:12s} {'available' if ok else 'unavailable: ' + reason}")
    lines += [
        "what each backend takes: per workload its dtypes, then the arguments it refuses (a case using one is",
        "skipped with the reason; every other case runs, checked against the reference):",
    ]
    lines += [f"  {name:12s} {support(name)}" for name, _, _ in registry.listing()]
    for w in WORKLOADS.values():
        lines.append(
            f"{w.name}: {w.description}; --shape {'x'.join(w.dims)}"
            + "".join(f",{k}={v}" for k, v in w.options.items())
        )
        for pr in w.presets:
            lines.append(
                f"  {pr.name:22s} {w.label({**w.options, **pr.params}):34s} [{','.join(sorted(pr.groups))}] {pr.source}"
            )
    return "\n".join(lines)


def support(name: str) -> str:
    """One backend's dtypes and refused features, workload by workload, from its declarations (Backend.dtypes,
    Backend.features)."""
    cls, parts = registry.backend_class(name), []
    dtypes, features = cls.dtypes, cls.features
    if not isinstance(dtypes, dict) or not isinstance(features, dict):  # they depend on the device found
        if cls.unavailable():
            return "(depends on its device; none here)"
        dtypes, features = registry.get(name).dtypes, registry.get(name).features
    for w in WORKLOADS.values():
        if w.name not in dtypes:
            parts.append(f"{w.name}: -")
            continue
        takes = features.get(w.name, frozenset())
        refused = [] if "*" in takes else [f for f in w.FEATURES if f not in takes]
        parts.append(f"{w.name}: {','.join(dtypes[w.name])}" + (f" (not {','.join(refused)})" if refused else ""))
    return "; ".join(parts)


def pick_backends(
    text: str | None, baseline: str, strict: bool, threads: int | None, device_choice: dict | None = None
) -> list:
    requested = csv_list(text) if text else [n for n in registry.names()]
    known = registry.names(include_hidden=True)
    for name in requested:
        if name not in known:
            raise choices("backend", name, registry.names())
    if baseline not in requested:
        requested = [baseline] + requested
    chosen = []
    for name in requested:
        reason = registry.backend_class(name).unavailable()
        if reason is None:
            chosen.append(registry.get(name, threads=threads, device=(device_choice or {}).get(name)))
        elif text is None and name != baseline:  # the default "everything available": skipping is the point
            continue
        elif strict:  # --strict holds for the backends named on the command line (and the baseline), no others
            raise HeteroError(f"backend {name!r} unavailable: {reason}")
        else:
            print(f"note: backend {name!r} unavailable ({reason}); continuing without it", file=sys.stderr)
    if not chosen:
        raise HeteroError("no requested backend is available here; see python -m bench.run --list")
    return chosen


def pick_cases(args) -> list:
    workloads = list(WORKLOADS) if args.workload == "all" else csv_list(args.workload)
    dtypes = csv_list(args.dtype)
    for d in dtypes:
        if d not in DTYPES:
            raise choices("dtype", d, DTYPES)
    if args.shape and len(workloads) != 1:
        raise HeteroError("--shape needs exactly one --workload (shapes differ per workload)")
    cases = []
    for name in workloads:
        w = get(name)
        for dtype in dtypes:
            if args.shape:
                cases += [w.case(w.parse_shape(s), dtype) for s in args.shape]
            else:
                cases += w.preset_cases("quick" if args.quick else _presets_of(w, args.preset, workloads), dtype)
    return cases


def _presets_of(w, text: str, workloads: list[str]) -> str:
    """With several workloads, the names in --preset that are w's (presets or groups), so one run can take, say,
    attention's decode presets and conv2d's grouped ones; a name no workload knows is left in, for its error."""
    names = csv_list(text)
    if len(workloads) < 2 or any(not any(_knows(x, n) for x in workloads) for n in names):
        return text
    return ",".join(n for n in names if _knows(w.name, n))


def _knows(workload: str, name: str) -> bool:
    return name == "all" or any(name == pr.name or name in pr.groups for pr in get(workload).presets)


def run_config(args) -> RunConfig:
    """The run's settings from its arguments: --quick shortens the timing budgets and the STREAM-triad arrays."""
    return RunConfig(
        baseline=args.baseline,
        strict=args.strict,
        seed=args.seed,
        quant=args.quant,
        budget_s=args.budget if args.budget is not None else (0.05 if args.quick else 0.3),
        warmup_s=0.01 if args.quick else WARMUP_S,
        stream_mib=32 if args.quick else 128,
    )


def _run(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.list:
        print(list_everything())
        return 0
    cases = pick_cases(args)
    if args.threads is not None and args.threads < 1:
        raise HeteroError(f"--threads {args.threads} must be >= 1")
    out = run_folder(args, "%Y%m%d-%H%M%S")  # a bad --out or a taken --name: one line, before any work
    backends = pick_backends(
        args.backends,
        args.baseline,
        args.strict,
        args.threads,
        {"opencl": args.opencl_device, "fpga-emu": args.fpga_preset},
    )
    biggest = max(cases, key=case_bytes, default=None)
    if biggest is not None:  # every backend's kernel of a case is held until its timing ends
        check_fits(f"{biggest.workload} {biggest.shape}", case_bytes(biggest, len(backends)), args.force)
    cfg = run_config(args)
    folder = out.create()
    devices = {b.name: vars(b.device()) | {"timing": b.timing, "peer": b.peer} for b in backends}
    # as typed: the interpreter's own argv, or the argv given to cli() (tests, other programs) as its module
    meta = metadata(
        devices, typed=None if argv is None else ["python", "-m", "bench.run", *argv], plugins=registry.plugin_sources()
    )
    write_metadata(folder / "meta.json", meta)

    print(f"compiling {', '.join(b.name for b in backends)} ...", file=sys.stderr)
    warm_up(backends, cfg)
    note = avx2_on_avx512_note()
    if note:
        print(note, file=sys.stderr)
    rows: list[dict] = []
    bar = tqdm(total=len(cases) * len(backends), unit="run", delay=2, file=sys.stderr, disable=None)

    def on_row(row):
        bar.set_description(f"{row['workload']} {row['shape']} {row['backend']}")
        bar.update()

    by_workload: dict = {}
    for c in cases:
        by_workload.setdefault(c.workload, []).append(c)
    for group in by_workload.values():  # one write per workload: an interrupt keeps every finished workload
        rows += run(group, backends, cfg, on_row)
        write_samples(folder / "samples.csv", rows)
        write_rows(folder / "bench.csv", rows, COLUMNS)
    bar.close()
    write_metadata(folder / "meta.json", meta | {"compile_s": cfg.compile_s, "blas": blas_report(), "complete": True})
    folder = out.commit()
    print(format_table(rows))
    print(f"\nwrote {folder / 'bench.csv'} ({len(rows)} rows), {folder / 'samples.csv'} and {folder / 'meta.json'}")
    bad = [r for r in rows if r["status"] in ("wrong", "error")]
    return 1 if bad else 0


def cli(argv=None) -> int:
    return main(_run, argv, prog="bench.run")


if __name__ == "__main__":
    sys.exit(cli())
