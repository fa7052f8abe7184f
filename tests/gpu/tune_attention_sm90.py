"""The wgmma attention kernel's tunings on a Hopper GPU, each checked against the mma.sync kernel, then timed
(CUDA events, median of 10 after 3 warm-ups, the V transpose included) beside the mma.sync kernel and, where
PyTorch is installed, its SDPA on the same data: one row a (tuning, shape, causal) to stdout and a CSV.

    python tests/gpu/tune_attention_sm90.py [--out tune_attention_sm90.csv]

Exits 0 with a line saying why where there is no CuPy or no compute-capability 9.0 GPU. run_on_gpu.sh runs it
as its last stage (`tune`), in whatever budget is left.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys

# F3_WG / F3_WG_WIDE: warpgroups a block (64 query rows each) at head dim 64 / 128; F3_BC / F3_BC_WIDE: keys a tile
VARIANTS = [
    {"F3_WG": 3, "F3_WG_WIDE": 2, "F3_BC": 128, "F3_BC_WIDE": 64},  # the default (FA3's warpgroup counts)
    {"F3_WG": 2, "F3_WG_WIDE": 2, "F3_BC": 128, "F3_BC_WIDE": 64},
    {"F3_WG": 3, "F3_WG_WIDE": 3, "F3_BC": 64, "F3_BC_WIDE": 64},
    {"F3_WG": 2, "F3_WG_WIDE": 1, "F3_BC": 64, "F3_BC_WIDE": 128},
]
SHAPES = [(4, 16, 4096, 64), (2, 16, 4096, 128)]  # (B, H, S, D): FlashAttention's benchmark sizes, 16k tokens


def _time(cp, fn, reps: int = 10) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(reps):
        start, stop = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, stop) / 1e3)
    return sorted(times)[reps // 2]


def _sdpa(q, k, v, causal: bool):
    """A callable running torch's SDPA on the same device memory (bfloat16), or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    tq, tk, tv = (torch.from_dlpack(x).view(torch.bfloat16) for x in (q, k, v))
    return lambda: torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=causal)


def _rows(cp, sm90, mma):
    rng = cp.random.default_rng(0)
    for B, H, S, D in SHAPES:
        # bfloat16 bit patterns: the top half of float32 normals
        q, k, v = (
            (rng.standard_normal((B, H, S, D), dtype=cp.float32).view(cp.uint32) >> 16).astype(cp.uint16)
            for _ in range(3)
        )
        for causal in (False, True):
            flops = 4 * B * H * S * S * D / (2 if causal else 1)
            ref = mma.prepare(q, k, v, "bfloat16", causal, 1 / math.sqrt(D))
            ref()
            base = {"B": B, "H": H, "S": S, "D": D, "causal": int(causal)}
            peers = {"mma.sync": _time(cp, ref)}
            if (sdpa := _sdpa(q, k, v, causal)) is not None:
                peers["torch-sdpa"] = _time(cp, sdpa)
            for name, t in peers.items():
                yield base | {"kernel": name, "tuning": "", "max_diff": 0.0, "ms": t * 1e3, "tflops": flops / t / 1e12}
            for tuning in VARIANTS:
                yield base | _variant(cp, sm90, tuning, (q, k, v), causal, ref.out, flops, peers.get("torch-sdpa"))


def _widen(cp, bits):
    """bfloat16 bit patterns (uint16) -> float32."""
    return (bits.astype(cp.uint32) << 16).view(cp.float32)


def _variant(cp, sm90, tuning, qkv, causal, ref_out, flops, sdpa_s):
    label = " ".join(f"{k}={v}" for k, v in tuning.items())
    try:
        run = sm90.prepare(*qkv, "bfloat16", causal, 1 / math.sqrt(qkv[0].shape[-1]), tuning=tuning)
        run()
        diff = float(cp.abs(_widen(cp, run.out) - _widen(cp, ref_out)).max())
        t = _time(cp, run) if diff <= 5e-2 else math.nan
    except Exception as e:  # noqa: BLE001 - a variant that fails to build or launch is a row, not the end
        return {
            "kernel": "wgmma",
            "tuning": label,
            "max_diff": math.nan,
            "ms": math.nan,
            "tflops": math.nan,
            "error": f"{type(e).__name__}: {str(e)[:200]}",
        }
    row = {"kernel": "wgmma", "tuning": label, "max_diff": diff, "ms": t * 1e3, "tflops": flops / t / 1e12}
    if sdpa_s:
        row["vs_sdpa"] = sdpa_s / t
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="tune_attention_sm90.csv", help="CSV to write (default: %(default)s)")
    args = ap.parse_args(argv)
    try:
        import cupy as cp
    except ImportError:
        print("tune_attention_sm90: no CuPy here; nothing to tune")
        return 0
    if cp.cuda.runtime.getDeviceCount() == 0 or cp.cuda.Device().compute_capability != "90":
        print("tune_attention_sm90: no compute-capability 9.0 GPU; the wgmma kernel needs one")
        return 0
    from hetero.kernels.attention import cupy_attention, cupy_attention_sm90

    fields = ["B", "H", "S", "D", "causal", "kernel", "tuning", "max_diff", "ms", "tflops", "vs_sdpa", "error"]
    with open(args.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for row in _rows(cp, cupy_attention_sm90, cupy_attention):
            w.writerow(row)
            f.flush()
            print(" ".join(f"{k}={row[k]:.4g}" if isinstance(row[k], float) else f"{k}={row[k]}" for k in row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
