"""The GPU check's bookkeeping without a GPU: tests/gpu/gpu_check_summary.py merges bench runs and judges the
targets from the files a run leaves; tests/gpu/run_on_gpu.sh refuses a bad stand-in or size in one line.
(The whole script is rehearsed by tests/gpu/rehearse_gpu_check.sh: slow, not CI.)"""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

GPU = Path(__file__).resolve().parent / "gpu"
sys.path.insert(0, str(GPU))
import gpu_check_summary as gcs  # noqa: E402


def _write(path: Path, rows: list[dict], delimiter=","):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, list(dict.fromkeys(k for r in rows for k in r)), delimiter=delimiter)
        w.writeheader()
        w.writerows(rows)


def _bench(wl, dt, ratio, status="ok"):
    return {"workload": wl, "dtype": dt, "backend": "cupy", "status": status, "vs_best_peer": ratio, "speedup": ""}


def fake_run(run: Path) -> Path:
    _write(
        run / "bench-runs" / "matmul" / "bench.csv",
        [_bench("matmul", "float16", "1.02"), _bench("matmul", "float16", "0.90")],
    )
    (run / "bench-runs" / "matmul" / "meta.json").write_text(json.dumps({"complete": True, "command": "m"}))
    _write(
        run / "bench-runs" / "attn" / "bench.csv",
        [
            _bench("attention", "bfloat16", "0.75"),
            {**_bench("attention", "bfloat16", ""), "status": "wrong", "peer": "False"},
        ],
    )
    sched = [
        {"taskset": "mixed:40", "mix": m, "policy": p, "makespan_s": t, "gap": g}
        for m, p, t, g in (
            ("numba", "dmda", "2.0", "1.0"),
            ("cupy", "dmda", "1.0", "1.0"),
            ("numba+cupy", "round-robin", "1.5", "1.9"),
            ("numba+cupy", "dmda", "0.9", "1.1"),
        )
    ]
    _write(run / "schedule-mixed" / "schedule.csv", sched)
    _write(run / "schedule-mixed" / "replay.csv", [{"error_pct": "-5.0"}, {"error_pct": "2.0"}])
    (run / "schedule-gan").mkdir()
    _write(
        run / "stages.tsv",
        [
            {"stage": "kit", "status": "ok", "limit_s": "30", "wall_s": "4"},
            {"stage": "schedule-gan", "status": "timeout", "limit_s": "55", "wall_s": "55"},
        ],
        delimiter="\t",
    )
    return run


def test_merge_unions_the_bench_runs(tmp_path):
    run = fake_run(tmp_path / "run")
    assert "4 rows" in gcs.merge(run)
    rows = gcs.read_csv(run / "bench.csv")
    assert len(rows) == 4 and "peer" in rows[0]  # the union of the runs' columns
    assert json.loads((run / "meta.json").read_text())["runs"]["matmul"]["complete"] is True


def test_summary_judges_each_target(tmp_path):
    run = fake_run(tmp_path / "run")
    gcs.merge(run)
    text = gcs.summary(run, "cupy")
    lines = {ln.split()[0] + " " + ln.split()[1]: ln for ln in text.splitlines() if ln.count(" ") > 3}
    assert "0.90" in lines["matmul float16"] and "NOT met" in lines["matmul float16"]
    assert "met" in lines["attention bfloat16"] and "NOT" not in lines["attention bfloat16"]
    assert "wrong=1" in lines["attention bfloat16"]
    dmda = next(ln for ln in text.splitlines() if ln.startswith("mixed:40"))
    assert "best single    1.000" in dmda and dmda.endswith("gap <= 1.3)") and "NOT" not in dmda
    assert "worst |error| 5.0% over 2 runs" in text
    assert "schedule-gan: no schedule.csv" in text
    assert "timeout" in text and " 59" in text.split("total")[1].splitlines()[0]


def test_run_on_gpu_refuses_a_bad_standin_size_or_stage_in_one_line():
    for env, args in (({"HETERO_GPU_STANDIN": "cuda"}, []), ({"GPU_CHECK_SIZE": "huge"}, []), ({}, ["full"])):
        done = subprocess.run(
            ["bash", str(GPU / "run_on_gpu.sh"), *args],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2 and len(done.stdout.strip().splitlines()) == 1, done.stdout + done.stderr
        assert "valid:" in done.stdout
