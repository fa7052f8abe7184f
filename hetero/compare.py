"""Did it get faster or slower? Two bench.run folders compared row by row, with a verdict a CI job can act on.

Rows are joined on (workload, shape, dtype, backend). For each, ratio = NEW's median time / BASE's (> 1: NEW is
slower), a 95% bootstrap interval of that ratio of medians (seeded: the same folders give the same interval), and a
verdict from a Mann-Whitney U test on the two sets of timed repetitions (samples.csv) plus a minimum effect:
    slower  if p < alpha and ratio > 1 + threshold
    faster  if p < alpha and ratio < 1 / (1 + threshold)   (NEW's throughput at least `threshold` higher)
    same    otherwise
A run written before samples were kept falls back to median and IQR (significant when the two interquartile ranges,
taken as median +- IQR/2, do not overlap), and the `basis` column says so. A modeled time is compared only with a
modeled time; any other pair is `incomparable`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu

from hetero.errors import HeteroError
from hetero.results import read_rows, read_samples

KEYS = ["workload", "shape", "dtype", "backend"]
COLUMNS = KEYS + [
    "base_median_s",
    "new_median_s",
    "ratio",
    "ci_low",
    "ci_high",
    "p_value",
    "n_base",
    "n_new",
    "verdict",
    "basis",
    "note",
]
VERDICTS = ("slower", "faster", "same", "incomparable", "only in BASE", "only in NEW")
SAMPLES, FALLBACK = "samples (Mann-Whitney U)", "median+IQR (no samples)"


@dataclass
class Run:
    """One bench.run folder: its rows keyed by KEYS, and each row's samples where the run kept them."""

    path: Path
    rows: dict  # key tuple -> bench.csv row (dict)
    samples: dict  # key tuple -> np.ndarray of seconds; empty when the run has no samples.csv
    has_samples: bool


def _numbers(df: pd.DataFrame, path: Path, column: str) -> pd.Series:
    """The column as floats; a cell of an ok row that is not a positive number is a one-line error."""
    values = pd.to_numeric(df[column], errors="coerce") if column in df else pd.Series(np.nan, index=df.index)
    bad = (df.status == "ok") & ~(values > 0) if column == "median_s" else (df.status == "ok") & (values < 0)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise HeteroError(
            f"corrupt results file {path}: row {i + 2}, column {column}: {df[column].iloc[i]!r} "
            "is not a valid time in seconds"
        )
    return values


def load_run(folder) -> Run:
    """A run folder's bench.csv (and samples.csv if any), or a one-line HeteroError naming what is wrong."""
    folder = Path(folder)
    if not folder.is_dir():
        raise HeteroError(f"no run folder {folder}; pass a folder that python -m bench.run wrote (holding bench.csv)")
    path = folder / "bench.csv"
    df = read_rows(path)
    if "status" not in df:
        df = df.assign(status="ok")
    if "timing" not in df:
        df = df.assign(timing="")
    df = df.assign(
        median_s=_numbers(df, path, "median_s"),
        iqr_s=_numbers(df, path, "iqr_s"),
        **{k: df[k].astype(str) for k in KEYS if k in df},
    )
    if "dtype" not in df:
        df = df.assign(dtype="float32")
    df = df.drop_duplicates(KEYS)
    rows = {tuple(r[k] for k in KEYS): r for r in df.to_dict("records")}
    samples_df = read_samples(folder / "samples.csv")
    samples = {}
    if samples_df is not None:
        samples_df = samples_df.assign(**{k: samples_df[k].astype(str) for k in KEYS})
        samples = {key: g.seconds.to_numpy(float) for key, g in samples_df.groupby(KEYS, sort=False)}
    return Run(folder, rows, samples, samples_df is not None)


def bootstrap_ratio_ci(
    base: np.ndarray, new: np.ndarray, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of median(new) / median(base), each set resampled with replacement: (n_boot,) ratios
    from (n_boot, len) index draws of a generator seeded with `seed`, so the interval is deterministic."""
    rng = np.random.default_rng(seed)
    b = np.median(base[rng.integers(0, len(base), (n_boot, len(base)))], axis=1)
    n = np.median(new[rng.integers(0, len(new), (n_boot, len(new)))], axis=1)
    lo, hi = np.percentile(n / b, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def verdict(ratio: float, significant: bool, threshold: float) -> str:
    if significant and ratio > 1 + threshold:
        return "slower"
    if significant and ratio < 1 / (1 + threshold):
        return "faster"
    return "same"


def _incomparable(b: dict, n: dict) -> str | None:
    """Why the pair cannot be compared, or None."""
    bad = [f"{side} status {r['status']}" for side, r in (("BASE", b), ("NEW", n)) if r["status"] != "ok"]
    if bad:
        return "; ".join(bad)
    kinds = ["modeled" if r["timing"] == "modeled" else "measured" for r in (b, n)]
    if kinds[0] != kinds[1]:
        return f"BASE {kinds[0]}, NEW {kinds[1]}: a modeled time is compared only with a modeled time"
    return None


def compare_pair(
    b: dict, n: dict, bs: np.ndarray | None, ns: np.ndarray | None, threshold: float, alpha: float, seed: int = 0
) -> dict:
    """One joined row: ratio, interval, p-value and verdict (bs, ns: the samples, or None)."""
    out = dict(base_median_s=b["median_s"], new_median_s=n["median_s"])
    why = _incomparable(b, n)
    if why:
        return {**out, "verdict": "incomparable", "note": why}
    if bs is not None and ns is not None and len(bs) >= 2 and len(ns) >= 2:
        ratio = float(np.median(ns) / np.median(bs))
        p = float(mannwhitneyu(ns, bs, alternative="two-sided").pvalue)
        lo, hi = bootstrap_ratio_ci(bs, ns, seed=seed)
        return {
            **out,
            "base_median_s": float(np.median(bs)),
            "new_median_s": float(np.median(ns)),
            "ratio": ratio,
            "ci_low": lo,
            "ci_high": hi,
            "p_value": p,
            "n_base": len(bs),
            "n_new": len(ns),
            "verdict": verdict(ratio, p < alpha, threshold),
            "basis": SAMPLES,
        }
    ratio = n["median_s"] / b["median_s"]
    iqr_b, iqr_n = (0.0 if pd.isna(r["iqr_s"]) else r["iqr_s"] for r in (b, n))
    apart = abs(n["median_s"] - b["median_s"]) > (iqr_b + iqr_n) / 2
    return {
        **out,
        "ratio": ratio,
        "n_base": b.get("reps"),
        "n_new": n.get("reps"),
        "verdict": verdict(ratio, apart, threshold),
        "basis": FALLBACK,
    }


def compare_runs(base: Run, new: Run, threshold: float = 0.05, alpha: float = 0.05, seed: int = 0) -> pd.DataFrame:
    """One row per key in either run (BASE's order, then NEW's extra rows), COLUMNS as columns."""
    if not 0 <= threshold < 1:
        raise HeteroError(f"--threshold {threshold} must be a fraction in [0, 1), e.g. 0.05 for 5%")
    if not 0 < alpha < 1:
        raise HeteroError(f"--alpha {alpha} must be in (0, 1), e.g. 0.05")
    out = []
    for key in list(base.rows) + [k for k in new.rows if k not in base.rows]:
        b, n = base.rows.get(key), new.rows.get(key)
        row = dict(zip(KEYS, key))
        if b is None or n is None:
            r = b if n is None else n
            out.append(
                {
                    **row,
                    f"{'base' if n is None else 'new'}_median_s": r["median_s"],
                    "verdict": "only in BASE" if n is None else "only in NEW",
                }
            )
            continue
        out.append({**row, **compare_pair(b, n, base.samples.get(key), new.samples.get(key), threshold, alpha, seed)})
    df = pd.DataFrame(out, columns=COLUMNS)
    return df.assign(n_base=df.n_base.astype("Int64"), n_new=df.n_new.astype("Int64"))


def summary(df: pd.DataFrame) -> str:
    """'2 slower, 1 same, 1 only in NEW' in VERDICTS order."""
    counts = df.verdict.value_counts()
    return ", ".join(f"{counts[v]} {v}" for v in VERDICTS if v in counts) or "no rows"


def _display(df: pd.DataFrame) -> pd.DataFrame:
    """Cells as text: times in ms, the interval as [low, high], blanks as '-'."""

    def num(v, fmt):
        return "-" if v is None or pd.isna(v) else format(v, fmt)

    return pd.DataFrame(
        {
            **{k: df[k] for k in KEYS},
            "base ms": [num(v * 1e3 if pd.notna(v) else v, ".4g") for v in df.base_median_s],
            "new ms": [num(v * 1e3 if pd.notna(v) else v, ".4g") for v in df.new_median_s],
            "ratio": [num(v, ".3f") for v in df.ratio],
            "95% CI": ["-" if pd.isna(lo) else f"[{lo:.3f}, {hi:.3f}]" for lo, hi in zip(df.ci_low, df.ci_high)],
            "p": [num(v, ".2g") for v in df.p_value],
            "n": [f"{num(a, '.0f')}/{num(b, '.0f')}" for a, b in zip(df.n_base, df.n_new)],
            "verdict": df.verdict,
            "basis / note": [
                n if isinstance(n, str) and n else (b if isinstance(b, str) else "") for b, n in zip(df.basis, df.note)
            ],
        }
    )


def header(base: Path, new: Path, threshold: float, alpha: float) -> str:
    return (
        f"BASE {base} vs NEW {new}: ratio = NEW median time / BASE median time (> 1: NEW slower); "
        f"verdict needs p < {alpha:g} and a change beyond {threshold:.0%}"
    )


def format_text(df: pd.DataFrame, title: str) -> str:
    """An aligned terminal table: text left, numbers right."""
    shown = _display(df)
    cols = list(shown.columns)
    body = shown.astype(str).values.tolist()
    widths = [max(len(x) for x in col) for col in zip(cols, *body)]
    right = {"base ms", "new ms", "ratio", "95% CI", "p", "n"}

    def line(cells):
        return "  ".join(
            c.rjust(w) if name in right else c.ljust(w) for c, w, name in zip(cells, widths, cols)
        ).rstrip()

    return "\n".join(
        [title, "", line(cols), line(["-" * w for w in widths])]
        + [line(r) for r in body]
        + ["", f"verdicts: {summary(df)}"]
    )


def format_markdown(df: pd.DataFrame, title: str) -> str:
    shown = _display(df)
    lines = [title, "", "| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    lines += ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in shown.values.tolist()]
    return "\n".join(lines + ["", f"Verdicts: {summary(df)}."])


def to_records(df: pd.DataFrame) -> list[dict]:
    """Rows as plain dicts, blanks as None (JSON null)."""
    return [
        {
            k: (None if not isinstance(v, str) and pd.isna(v) else v.item() if hasattr(v, "item") else v)
            for k, v in r.items()
        }
        for r in df.to_dict("records")
    ]
