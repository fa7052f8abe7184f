"""The CUDA C kernels compile for Hopper (sm_90; the wgmma kernel for sm_90a) with nvcc, so a typo or a register
spill is caught on a CPU-only machine; on a GPU, NVRTC compiles the same text. Runs where nvcc is found: on PATH
(a CUDA toolkit), or from the nvidia-cuda-nvcc wheel (the `cuda-compile` extra); else skipped with that reason."""

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hetero.kernels import cuda_source, wgmma_ptx
from hetero.kernels.attention import cupy_attention, cupy_attention_sm90
from hetero.kernels.conv2d import cupy_conv2d, cupy_igemm
from hetero.kernels.matmul import cupy_int8


def _nvcc() -> str | None:
    if found := shutil.which("nvcc"):
        return found
    spec = importlib.util.find_spec("nvidia")
    for root in (spec.submodule_search_locations or []) if spec else []:
        for cand in sorted(Path(root).glob("cu*/bin/nvcc")):
            return str(cand)
    return None


NVCC = _nvcc()
needs_nvcc = pytest.mark.skipif(
    NVCC is None, reason="nvcc not found: install a CUDA toolkit or pip install -e '.[cuda-compile]'"
)

# launcher -> (the CUDA C it hands NVRTC, template kernels it asks NVRTC for by name)
LAUNCHERS = {
    "attention": (cupy_attention.text(), cupy_attention._names()),
    "attention_sm90": (cupy_attention_sm90.text(), cupy_attention_sm90.NAMES),
    "conv_transpose2d": (cuda_source.defines(cupy_conv2d.TUNING) + cupy_conv2d.SOURCE.read_text(), cupy_conv2d.NAMES),
    "conv2d_igemm": (cupy_igemm.text(), cupy_igemm.NAMES),
    "matmul_int8": (cuda_source.defines(cupy_int8.TUNING) + cupy_int8.SOURCE.read_text(), cupy_int8.NAMES),
}
# wgmma exists on the arch-specific target only; -gencode, as the -arch=sm_90a shorthand adds a plain sm_90 pass
TARGET = {"attention_sm90": "-gencode=arch=compute_90a,code=sm_90a"}


def _compile(name: str, tmp_path: Path) -> str:
    """ptxas's report for the launcher's source as CuPy builds it: its defines, then the text; each named
    template instantiated by taking its address, as NVRTC's name expressions do."""
    source, names = LAUNCHERS[name]
    text = source + ("\nvoid* keep[] = {" + ", ".join(f"(void*)&{n}" for n in names) + "};\n" if names else "")
    src = tmp_path / f"{name}.cu"
    src.write_text(text)
    out = subprocess.run(
        [
            NVCC,
            "-std=c++17",
            TARGET.get(name, "-arch=sm_90"),
            "-cubin",
            "-Xptxas",
            "-v",
            str(src),
            "-o",
            str(tmp_path / f"{name}.cubin"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, f"{name}: nvcc failed:\n{out.stderr[-3000:]}"
    return out.stderr


@needs_nvcc
@pytest.mark.parametrize("name", sorted(LAUNCHERS))
def test_cuda_kernels_compile_for_sm90_without_spills(name, tmp_path):
    report = _compile(name, tmp_path)
    entries = re.findall(r"Compiling entry function '(\w+)'", report)
    names = LAUNCHERS[name][1]
    assert len(entries) >= len(names), f"{name}: {len(entries)} kernels compiled, {len(names)} named"
    spills = re.findall(r"(\d+) bytes spill stores", report)
    assert spills and all(s == "0" for s in spills), f"{name}: register spills:\n{report}"


def test_wgmma_helpers_refuse_widths_wgmma_lacks():
    with pytest.raises(ValueError, match="multiples of 8 from 8 to 256, got \\[12, 264\\]"):
        wgmma_ptx.helpers((64, 12, 264))
