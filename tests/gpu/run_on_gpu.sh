#!/usr/bin/env bash
# The whole GPU check in one run on the lent GPU machine (repo root, no network, no Ray installed):
#   kit     unpack the Ray kit (.gpukit/kit/raykit-cp3XX.tar.xz, carried; tests/gpu/make_ray_kit.py builds it)
#   env     nvidia-smi, Python and library versions
#   pytest  the GPU tests (tests/gpu)
#   warm    Numba's kernels compiled once into their cache
#   schedule-<set>, replay-<set>   bench.schedule --mixes "numba;cupy;numba+cupy" on mixed, transformer and gan,
#           each then replayed by bench.simulate --replay
#   bench-* bench.run, cupy against torch-cuda, every workload and dtype on trimmed gpu presets; bench-merge
#   tune    tests/gpu/tune_attention_sm90.py: the wgmma attention kernel's tunings, in what budget is left
# Every stage has its own time limit and the whole run a budget (GPU_CHECK_BUDGET_S, default 480 s): a stage
# gets min(its limit, what the budget has left), so one slow stage cannot eat the rest. After every stage the
# run folder is packed again into $OUT, so a run cut short still brings back what it finished.
#
#   bash tests/gpu/run_on_gpu.sh [kit|pytest|schedule|bench|tune ...]    default: every stage, in the order above
# (env always runs; kit also with schedule). The device-tool call to make: docs/gpu.md, "Running the GPU check".
# Comes back in $OUT/<run name>/ (at most 8 files, the device tool's limit): summary.txt, stages.tsv, check.log,
# bench.csv, and <run name>.tar.xz, the run folder to commit: tar -xJf <run name>.tar.xz -C results/
#
# Env: PYTHON (default python3); OUT (default /tmp/out); KIT; GPU_CHECK_BUDGET_S;
#   HETERO_GPU_STANDIN=null  rehearsal without a GPU: null stands in for cupy and numpy for torch-cuda
#   GPU_CHECK_SIZE=quick     tiny shapes (bench.run --quick, bench.schedule --size quick), for rehearsals
#   GPU_CHECK_POLICIES       bench.schedule --policy (default all), e.g. single,heft,dmda on a rerun short of time
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
OUT=${OUT:-/tmp/out}
BUDGET=${GPU_CHECK_BUDGET_S:-480}
RESERVE=10                                    # seconds kept for the last summary and pack
SIZE=${GPU_CHECK_SIZE:-gpu}
export PYTHONUNBUFFERED=1
GPU=cupy PEER=torch-cuda
case "${HETERO_GPU_STANDIN:-}" in
  "") ;;
  null) GPU=null PEER=numpy; export HETERO_NULL_SECONDS=${HETERO_NULL_SECONDS:-0.002} ;;
  *) echo "run_on_gpu: HETERO_GPU_STANDIN=$HETERO_GPU_STANDIN; valid: null, or unset"; exit 2 ;;
esac
for a in "$@"; do
  case "$a" in kit|pytest|schedule|bench|tune) ;; *) echo "run_on_gpu: stage '$a'; valid: kit, pytest, schedule, bench, tune"; exit 2 ;; esac
done
case "$SIZE" in gpu|quick) ;; *) echo "run_on_gpu: GPU_CHECK_SIZE=$SIZE; valid: gpu, quick"; exit 2 ;; esac
START=$(date +%s)

slug() {
  local n
  n=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
  [ -n "$n" ] || n=$("$PY" -c "import cupy; n=cupy.cuda.runtime.getDeviceProperties(0)['name']; print(n.decode() if isinstance(n, bytes) else n)" 2>/dev/null)
  [ "$GPU" = cupy ] || n="standin-$GPU"
  echo "${n:-unknown-gpu}" | tr 'A-Z' 'a-z' | sed 's/[^a-z0-9]\+/-/g; s/^-//; s/-$//'
}
NAME=$(slug)-check-$(date -u +%Y%m%d-%H%M)
WORK=${GPU_CHECK_WORK:-/tmp/gpu-check}
RUN=$WORK/$NAME
BACK=$OUT/$NAME
mkdir -p "$RUN/logs" "$BACK" || exit 1
printf 'stage\tstatus\tlimit_s\twall_s\n' > "$RUN/stages.tsv"

pack() {  # the run folder into $OUT, replaced whole; the small files beside it for a first look
  tar -C "$WORK" -cJf "$BACK/$NAME.tar.xz.tmp" "$NAME" && mv "$BACK/$NAME.tar.xz.tmp" "$BACK/$NAME.tar.xz"
  cp "$RUN/stages.tsv" "$BACK/"; [ -f "$RUN/bench.csv" ] && cp "$RUN/bench.csv" "$BACK/"
  cp "$RUN/check.log" "$BACK/" 2>/dev/null
  return 0
}

# stage NAME LIMIT command...: run under min(LIMIT, budget left), log to logs/NAME.log and check.log, record it.
stage() {
  local name=$1 limit=$2 left t0 rc status wall; shift 2
  left=$(( BUDGET - RESERVE - ($(date +%s) - START) ))
  [ "$limit" -le "$left" ] || limit=$left
  if [ "$limit" -lt 5 ]; then
    printf '%s\tno-time\t%s\t0\n' "$name" "$limit" >> "$RUN/stages.tsv"; echo "== $name: skipped, budget spent"
    return 0
  fi
  echo "== $name (limit ${limit}s, $(( $(date +%s) - START ))s into the run)" | tee -a "$RUN/check.log"
  t0=$(date +%s)
  timeout -k 10 "$limit" bash -c '"$@"' "$name" "$@" > "$RUN/logs/$name.log" 2>&1
  rc=$?
  wall=$(( $(date +%s) - t0 ))
  case $rc in 0) status=ok ;; 124|137) status=timeout ;; *) status="rc=$rc" ;; esac
  tail -n 30 "$RUN/logs/$name.log" | grep -v '^\s*$' | tee -a "$RUN/check.log"
  echo "-- $name: $status in ${wall}s" | tee -a "$RUN/check.log"
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$limit" "$wall" >> "$RUN/stages.tsv"
  pack
}

STAGES=" $* "
[ $# -eq 0 ] && STAGES=""
on() { [ -z "$STAGES" ] || [[ "$STAGES" == *" $1 "* ]]; }

unpack_kit() {
  # kernels/ is the package hetero.kernels only in an install (pyproject's package-dir); this tree is a plain
  # copy, so link it in place (the copy is the machine's own and thrown away with it)
  if ! "$PY" -c "import hetero.kernels" 2>/dev/null; then
    ln -sfn ../kernels hetero/kernels && echo "linked hetero/kernels -> ../kernels (the tree is not installed)"
  fi
  if "$PY" -c "import ray" 2>/dev/null; then echo "ray is installed here: $("$PY" -c 'import ray; print(ray.__file__)')"; return 0; fi
  local ver kit
  ver=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')
  kit=${KIT:-.gpukit/kit/raykit-cp$ver.tar.xz}
  rm -rf "$WORK/raykit"
  "$PY" tests/gpu/unpack_ray_kit.py "$kit" "$WORK/raykit"
}
export PYTHONPATH=$PWD:$WORK/raykit/site
export HETERO_PERFMODEL=$RUN/perfmodel.json

environment() {
  nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw,temperature.gpu,driver_version --format=csv \
    > "$RUN/nvidia-smi.txt" 2>&1 || echo "no nvidia-smi" > "$RUN/nvidia-smi.txt"
  cat "$RUN/nvidia-smi.txt"
  "$PY" -V; nproc
  "$PY" -c "import ray; print('ray', ray.__version__, ray.__file__)"
  "$PY" -m bench.run --list | sed -n '1,/^[a-z]/p'
}

bench() {  # bench NAME [bench.run args]: GPU against its peer; GPU_CHECK_SIZE=quick swaps the presets for --quick
  local name=$1 args=(); shift
  while [ $# -gt 0 ]; do
    if [ "$SIZE" = quick ] && [ "$1" = --preset ]; then shift 2; continue; fi
    args+=("$1"); shift
  done
  [ "$SIZE" = quick ] && args+=(--quick)
  "$PY" -m bench.run --backends "$GPU,$PEER" --baseline "$PEER" --out "$RUN/bench-runs" --name "$name" "${args[@]}"
}

# schedule SET: the three mixes on one task set. The perf model starts empty (calibration measures every kind on
# every device first) and is shared by the three sets.
schedule() {
  local size=full; [ "$SIZE" = quick ] && size=quick
  "$PY" -m bench.schedule --mixes "numba;$GPU;numba+$GPU" --tasks "$1" --size "$size" --model "$RUN/perfmodel.json" \
    --from-results '' --out "$RUN" --name "schedule-$1" --policy "${GPU_CHECK_POLICIES:-all}"
}

replay() { "$PY" -m bench.simulate --replay "$RUN/schedule-$1" --model "$RUN/perfmodel.json" --from-results ''; }

export PY RUN WORK GPU PEER SIZE KIT=${KIT:-}
export -f unpack_kit environment bench schedule replay
echo "run_on_gpu: $NAME; $GPU vs $PEER; size $SIZE; budget ${BUDGET}s; results to $BACK" | tee "$RUN/check.log"
{ on kit || on schedule; } && stage kit 20 unpack_kit
stage env 15 environment
on pytest && stage pytest 40 "$PY" -m pytest tests/gpu -q -rfE -p no:cacheprovider
# The scheduler on CPU+GPU (never run on a GPU yet) before the benchmark. Numba compiles each kernel on first
# use (about a second each) and caches it beside the kernel: fill that cache once, not in every stage's actors.
on schedule && stage warm 25 "$PY" -m bench.run --backends numba --quick --workload all --dtype float32 \
  --out "$WORK/warm" --name numba
for set in mixed transformer gan; do
  limit=55; [ "$set" = mixed ] && limit=80
  on schedule && stage "schedule-$set" "$limit" schedule "$set"
  on schedule && [ -f "$RUN/schedule-$set/schedule.csv" ] && stage "replay-$set" 10 replay "$set"
done
# The changed conv kernels first, matmul (measured before, the same library as the peer) last. The float64 CPU
# references of the largest presets (fa-bench-8k-causal, deepbench-7680x24000) would not fit the budget, and an
# attention reference is memory-bound (S x S scores per head in float64): bf16 and fp32 take fewer presets.
# bench.run writes each row as it goes, so a stage cut short keeps the cases it finished.
on bench && stage bench-conv 35 bench conv --workload conv2d,conv_transpose2d --preset gpu --dtype float32,float16,bfloat16
on bench && stage bench-attn16 40 bench attn16 --workload attention --preset fa-bench-2k,fa-bench-2k-causal,llama7b-4k-causal --dtype float16
on bench && stage bench-attnbf16 30 bench attnbf16 --workload attention --preset fa-bench-2k-causal,llama7b-4k-causal --dtype bfloat16
on bench && stage bench-attn32 20 bench attn32 --workload attention --preset fa-bench-2k-causal --dtype float32
on bench && stage bench-matmul 35 bench matmul --workload matmul --preset llama7b-mlp-up,square-8192 --dtype float32,tf32,float16,bfloat16
on bench && stage bench-merge 10 "$PY" tests/gpu/gpu_check_summary.py merge "$RUN"
# Last, in what the budget has left: the wgmma attention kernel's tunings against mma.sync and torch's SDPA
on tune && stage tune 40 "$PY" tests/gpu/tune_attention_sm90.py --out "$RUN/tune_attention_sm90.csv"
"$PY" tests/gpu/gpu_check_summary.py summary "$RUN" --ours "$GPU" > "$RUN/summary.txt" 2>&1
cat "$RUN/summary.txt" | tee -a "$RUN/check.log"
pack; cp "$RUN/summary.txt" "$BACK/"
echo "run_on_gpu: $(( $(date +%s) - START ))s; $BACK: $(ls "$BACK" | tr '\n' ' ')"
