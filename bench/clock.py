"""python -m bench.clock: measure this CPU's clock under load and its memory bandwidth, the two numbers its
fp32 peak (% of peak in every table) and roofline rest on.

    python -m bench.clock              # all cores, about 2 s each
    python -m bench.clock --quick      # a rough figure in well under a second
On AVX-512 CPUs it also times the chains as 512-bit FMAs and estimates the peak from that clock, since some
CPUs run slower under them. Put the result in hetero/devices.py (MEASURED_CLOCKS, MEASURED_BANDWIDTH), or set
HETERO_CPU_GHZ for one run.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from bench.cli import Parser, main, positive_float, positive_int, thread_count


def parser() -> Parser:
    p = Parser(
        prog="python -m bench.clock",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument("--threads", type=thread_count, default=None, help="cores to load (default: every physical core)")
    p.add_argument("--seconds", type=positive_float, default=2.0, help="time spent on the clock loop (default 2)")
    p.add_argument("--mib", type=positive_int, default=256, help="MiB per triad array (default 256)")
    p.add_argument("--quick", action="store_true", help="0.2 s of clock loop and 32 MiB arrays")
    return p


def _run(argv=None) -> int:
    from hetero import cpu_probe, devices
    from hetero.errors import HeteroError

    args = parser().parse_args(argv)
    threads = devices.physical_cores() if args.threads is None else args.threads
    if threads < 1 or args.seconds <= 0 or args.mib < 1:
        raise HeteroError("--threads, --seconds and --mib must be positive")
    seconds, mib = (0.2, 32) if args.quick else (args.seconds, args.mib)
    ghz = cpu_probe.clock_ghz(threads, seconds)
    lanes, pipes = devices.fp32_lanes()
    print(f"cpu: {devices.cpu_name()}, key {devices.cpu_key()}")
    _print_clock(ghz, f"{threads} cores running {cpu_probe.FMA_CHAINS} scalar FMA chains each")
    if lanes == 16:  # AVX-512: the peak counts 512-bit FMAs, under which some CPUs run slower
        ghz = cpu_probe.wide_clock_ghz(threads, pipes, seconds)
        _print_clock(ghz, f"the same chains as 512-bit FMAs, {pipes} a cycle per core")
    med = statistics.median(ghz)
    bw = cpu_probe.triad_gbps(mib)
    print(
        f"fp32 peak: {threads} cores x {pipes} FMA pipes x {lanes} lanes x 2 FLOP x {med:.2f} GHz = "
        f"{devices.fp32_peak_gflops(threads, med):.1f} GFLOP/s   [estimated from the last clock]"
    )
    print(
        f"memory: {min(bw):.1f}-{max(bw):.1f} GB/s STREAM triad, {mib} MiB arrays, {threads} threads   "
        f"[measured wall clock]"
    )
    return 0


def _print_clock(ghz: list[float], how: str) -> None:
    med = statistics.median(ghz)
    print(f"clock: {min(ghz):.2f}-{max(ghz):.2f} GHz (median {med:.2f}) with {how}   [measured wall clock]")


def cli(argv=None) -> int:
    return main(_run, argv, prog="bench.clock")


if __name__ == "__main__":
    sys.exit(cli())
