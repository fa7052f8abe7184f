#!/usr/bin/env bash
# Rehearse tests/gpu/run_on_gpu.sh without a GPU, as the device tool would run it: on a copy of the working tree
# (tracked and untracked-not-ignored files, plus the carried .gpukit/kit), in a fresh venv of the kit's Python
# holding only what the GPU machine has (no Ray, no pyopencl, hetero not installed), with null standing in for
# cupy and numpy for torch-cuda. Slow (a venv install, five Ray starts), so CI does not run it.
#   bash tests/gpu/rehearse_gpu_check.sh [stage ...]
#   GPU_CHECK_SIZE=quick bash tests/gpu/rehearse_gpu_check.sh     # tiny shapes: the plumbing in about 2 minutes
# Env: KIT_PYTHON, KIT_VENV as in check_ray_kit.sh; OUT (default /tmp/gpu-rehearsal-out); GPU_CHECK_BUDGET_S.
set -euo pipefail
cd "$(dirname "$0")/../.."
kit=$(ls .gpukit/kit/raykit-cp3*.tar.xz 2>/dev/null | head -1) || true
[ -n "$kit" ] || { echo "rehearse: no kit in .gpukit/kit; build it: python tests/gpu/make_ray_kit.py"; exit 2; }
minor=$(basename "$kit" | sed -n 's/.*cp3\([0-9]*\).*/\1/p')
py=${KIT_PYTHON:-}
if [ -z "$py" ]; then   # the first candidate that runs (a pyenv shim may exist and still refuse)
  for c in "python3.$minor" "$HOME"/.pyenv/versions/3."$minor".*/bin/python3; do
    "$c" -V >/dev/null 2>&1 && { py=$c; break; }
  done
fi
[ -n "$py" ] || { echo "rehearse: no working python3.$minor here; set KIT_PYTHON"; exit 2; }
tmp=$(mktemp -d /tmp/gpu-rehearsal.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/tree/.gpukit"
git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -x -C "$tmp/tree"
cp -r .gpukit/kit "$tmp/tree/.gpukit/"
venv=${KIT_VENV:-$tmp/venv}
if [ -z "${KIT_VENV:-}" ]; then
  "$py" -m venv "$venv"
  "$venv/bin/pip" install -q numpy numba scipy pandas psutil threadpoolctl tqdm pytest
fi
cd "$tmp/tree"
PYTHON=$venv/bin/python HETERO_GPU_STANDIN=null OUT=${OUT:-/tmp/gpu-rehearsal-out} GPU_CHECK_WORK=$tmp/work \
  PIP_NO_INDEX=1 bash tests/gpu/run_on_gpu.sh "$@"
