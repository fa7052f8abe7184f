#!/usr/bin/env bash
# On the lent GPU machine (repo root): the GPU tests, or (with "full") the cupy vs torch-cuda benchmark.
# Results land in $OUT/<gpu-name-slug>/: bench.csv (all runs merged), meta.json, pytest.log, bench.log.
#   bash tests/gpu/run_on_gpu.sh [full]
set -o pipefail
export PYTHONPATH=. PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}
SLUG=$(python3 -c "import cupy,re; n=cupy.cuda.runtime.getDeviceProperties(0)['name']; n=n.decode() if isinstance(n,bytes) else n; print(re.sub('[^a-z0-9]+','-',n.lower()).strip('-'))")
DIR=$OUT/$SLUG; mkdir -p "$DIR"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw,temperature.gpu --format=csv | tee "$DIR/nvidia-smi.txt"
[ "$1" = full ] || { python3 -m pytest tests/gpu -q -rfE 2>&1 | tee "$DIR/pytest.log" | tail -40; exit 0; }
B="python3 -m bench.run --backends cupy,torch-cuda --baseline torch-cuda --out /tmp/runs"
run() { local name=$1 limit=$2; shift 2; echo "== $name"; timeout "$limit" $B --name "$name" "$@" 2>&1 | grep -v '^\s*$' | tail -25; }
{
run matmul 150 --workload matmul --preset gpu --dtype float32,tf32,float16,bfloat16
run conv 90 --workload conv2d,conv_transpose2d --preset gpu --dtype float32,float16,bfloat16
run attn-f16 150 --workload attention --preset gpu --dtype float16
run attn-bf16 70 --workload attention --preset fa-bench-2k,fa-bench-2k-causal,llama7b-4k-causal --dtype bfloat16
run attn-f32 70 --workload attention --preset fa-bench-2k,fa-bench-2k-causal,llama7b-4k-causal --dtype float32
} 2>&1 | tee "$DIR/bench.log"
python3 - "$DIR" <<'PY'
import json, sys, pathlib, pandas as pd
out = pathlib.Path(sys.argv[1]); runs = sorted(p for p in pathlib.Path("/tmp/runs").iterdir() if (p / "bench.csv").exists())
df = pd.concat([pd.read_csv(p / "bench.csv", keep_default_na=False, na_values=[""]) for p in runs])
df.to_csv(out / "bench.csv", index=False)
meta = json.loads((runs[0] / "meta.json").read_text())
meta["runs"] = {p.name: json.loads((p / "meta.json").read_text()).get("complete", False) for p in runs}
(out / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
cols = ["workload", "preset", "dtype", "backend", "status", "median_s", "gflops", "vs_best_peer", "energy_j"]
print(df[cols].to_string(index=False, max_colwidth=22))
PY
