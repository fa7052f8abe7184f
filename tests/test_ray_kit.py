"""tests/gpu/unpack_ray_kit.py on a tiny fake kit: Ray always lands in site/, a requirement only when this Python
lacks it or has a version Ray rejects, and a kit for another Python or a second unpack is one line and exit 2.
(The real kit, unpacked into a fresh venv with Ray started from it, is tests/gpu/check_ray_kit.sh: slow, not CI.)"""

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

UNPACK = Path(__file__).resolve().parent / "gpu" / "unpack_ray_kit.py"


def _add(tar, name, text):
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def fake_kit(path: Path) -> Path:
    """ray, pytest (installed here, accepted), 'packaging' (installed here, rejected by an impossible spec) and a
    distribution no Python has."""
    manifest = {
        "ray": "0.0",
        "python": "any",
        "ray_requires": ["pytest", "packaging>=999"],
        "deps": {"pytest": "0", "packaging": "999.0", "hetero-kit-absent-dist": "1.0"},
    }
    with tarfile.open(path, "w:xz") as tar:
        _add(tar, "./manifest.json", json.dumps(manifest))
        _add(tar, "./ray/ray/__init__.py", "")
        for name in manifest["deps"]:
            _add(tar, f"./deps/{name}/{name.replace('-', '_')}_marker.py", "")
    return path


def _unpack(*args):
    return subprocess.run([sys.executable, str(UNPACK), *map(str, args)], capture_output=True, text=True)


def test_adds_only_what_this_python_lacks_or_ray_rejects(tmp_path):
    pytest.importorskip("packaging")
    kit = fake_kit(tmp_path / "kit.tar.xz")
    done = _unpack(kit, tmp_path / "dest")
    assert done.returncode == 0, done.stderr
    site = tmp_path / "dest" / "site"
    assert (site / "ray" / "__init__.py").is_file()
    assert (site / "hetero_kit_absent_dist_marker.py").is_file()
    assert (site / "packaging_marker.py").is_file()  # installed here, but ray asks for >=999
    assert not (site / "pytest_marker.py").exists()  # installed here and accepted: the machine's wins
    assert "rejected by ray" in done.stdout


def test_second_unpack_and_wrong_python_are_one_line(tmp_path):
    kit = fake_kit(tmp_path / "kit.tar.xz")
    assert _unpack(kit, tmp_path / "dest").returncode == 0
    again = _unpack(kit, tmp_path / "dest")
    assert again.returncode == 2 and "exists" in again.stderr and len(again.stderr.splitlines()) == 1
    other = tmp_path / f"raykit-cp{sys.version_info.major}{sys.version_info.minor + 1}.tar.xz"
    other.write_bytes(kit.read_bytes())
    wrong = _unpack(other, tmp_path / "dest2")
    assert wrong.returncode == 2 and "for CPython" in wrong.stderr and len(wrong.stderr.splitlines()) == 1
