#!/usr/bin/env bash
# The Ray kit checked as the GPU machine will use it: a fresh virtual environment of the kit's Python with only
# what that machine has (numpy, numba, scipy, pandas, psutil, threadpoolctl, tqdm, pytest; no Ray, no pyopencl),
# the kit unpacked beside it, and with no package index (PIP_NO_INDEX; Ray comes from PYTHONPATH alone):
# hetero imports, ray.init starts, and two device actors run a task set. Slow (a venv install, two Ray starts),
# so CI does not run it; run it after changing the kit or Ray's version (docs/gpu.md).
#   bash tests/gpu/check_ray_kit.sh [kit.tar.xz]          default .gpukit/kit/raykit-cp312.tar.xz
# Env: KIT_PYTHON  interpreter for the venv (default python3.<minor> from the kit's name, pyenv's if on PATH)
#      KIT_VENV    reuse this venv instead of building one (it must not hold ray)
set -euo pipefail
cd "$(dirname "$0")/../.."
kit=${1:-.gpukit/kit/raykit-cp312.tar.xz}
[ -f "$kit" ] || { echo "check_ray_kit: no kit at $kit; build it: python tests/gpu/make_ray_kit.py"; exit 2; }
minor=$(basename "$kit" | sed -n 's/.*cp3\([0-9]*\).*/\1/p')
py=${KIT_PYTHON:-}
if [ -z "$py" ]; then   # the first candidate that runs (a pyenv shim may exist and still refuse)
  for c in "python3.$minor" "$HOME"/.pyenv/versions/3."$minor".*/bin/python3; do
    "$c" -V >/dev/null 2>&1 && { py=$c; break; }
  done
fi
[ -n "$py" ] || { echo "check_ray_kit: no working python3.$minor here; set KIT_PYTHON"; exit 2; }
work=$(mktemp -d /tmp/raykit-check.XXXXXX)
trap 'rm -rf "$work"' EXIT
venv=${KIT_VENV:-$work/venv}
if [ -z "${KIT_VENV:-}" ]; then
  "$py" -m venv "$venv"
  "$venv/bin/pip" install -q numpy numba scipy pandas psutil threadpoolctl tqdm pytest
fi
vpy=$venv/bin/python
if "$vpy" -c "import ray" 2>/dev/null; then echo "check_ray_kit: $venv already has ray; the check needs one without"; exit 2; fi
"$vpy" tests/gpu/unpack_ray_kit.py "$kit" "$work/kit"
export PYTHONPATH=$PWD:$work/kit/site PIP_NO_INDEX=1
export HETERO_NULL_SECONDS=${HETERO_NULL_SECONDS:-0.002} HETERO_PERFMODEL=$work/perfmodel.json
echo "== hetero without pyopencl"
"$vpy" -c "import pyopencl" 2>/dev/null && echo "note: pyopencl is installed; the no-pyopencl check means little"
"$vpy" -m bench.run --list | sed -n '1,/^[a-z]/p'
"$vpy" -c "import hetero.scheduler.runtime, hetero.backends.registry as r; print('hetero imports:', r.names())"
echo "== ray.init from the kit"
"$vpy" - <<'PY'
import ray
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
assert ray.__file__.startswith(__import__("os").environ["PYTHONPATH"].split(":")[1]), ray.__file__
print("ray", ray.__version__, "from", ray.__file__, "resources", ray.cluster_resources())
ray.shutdown()
PY
echo "== two device actors"
"$vpy" -m bench.schedule --devices numpy,null --policy dmda,round-robin --tasks mixed:8 --size quick \
  --from-results '' --out "$work/out" --name kit-check
test -s "$work/out/kit-check/schedule.csv"
echo "check_ray_kit: ok ($kit, $("$vpy" -V))"
