"""What `pip install .` puts in site-packages: every package folder of the tree, kernels/ as hetero.kernels with its
OpenCL and CUDA sources, and no top-level `kernels` (another project's import name)."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")

ROOT = Path(__file__).resolve().parents[1]
TREE = {"hetero": "hetero", "hetero.kernels": "kernels", "bench": "bench"}  # package -> its folder in the tree


def _setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _package_folders() -> set[str]:
    """Dotted names of every folder with an __init__.py under the tree's top packages."""
    found = set()
    for package, folder in TREE.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((package, *rel)))
    return found


def test_every_package_folder_is_listed_in_pyproject():
    listed = set(_setuptools()["packages"])
    missing = sorted(_package_folders() - listed)
    assert not missing, f"add {missing} to [tool.setuptools] packages in pyproject.toml, or pip install . leaves it out"
    assert not [p for p in listed if p == "kernels" or p.startswith("kernels.")]
    assert _setuptools()["package-dir"] == {"hetero.kernels": "kernels"}


@pytest.mark.slow
def test_wheel_installs_kernels_as_hetero_kernels_with_their_sources(tmp_path):
    src = tmp_path / "src"
    skip = shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc", "*.egg-info", "build")
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for folder in TREE.values():
        shutil.copytree(ROOT / folder, src / folder, ignore=skip)
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(src)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, f"pip wheel failed: {done.stderr[-2000:]}"
    (wheel,) = (tmp_path / "dist").glob("hetero-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"hetero", "bench"}
    for source in [*(ROOT / "kernels").rglob("*.cl"), *(ROOT / "kernels").rglob("*.cu")]:
        assert f"hetero/kernels/{source.relative_to(ROOT / 'kernels').as_posix()}" in names
    assert "hetero/kernels/matmul/numba_matmul.py" in names
