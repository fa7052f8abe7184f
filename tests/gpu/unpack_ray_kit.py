"""Unpack a Ray kit (tests/gpu/make_ray_kit.py) into <dest>/site for the Python that runs this; standard library only.

    python3 tests/gpu/unpack_ray_kit.py .gpukit/kit/raykit-cp312.tar.xz /tmp/raykit
    export PYTHONPATH=$PWD:/tmp/raykit/site

<dest>/site gets Ray and, of Ray's requirements, only those this Python lacks or has in a version Ray's metadata
rejects: the machine's own packages win, so nothing it already imports is shadowed by another version. Ray's
workers inherit PYTHONPATH, so they see the same tree. Exit 2, with one line, when the kit was packed for another
Python or <dest>/site already exists (a second unpack would mix two kits).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tarfile
from importlib import metadata
from pathlib import Path


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed(name: str) -> str | None:
    """This Python's version of distribution `name` (sys.path as it is now), or None."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def rejected(requires: list[str], kit: Path) -> dict[str, object]:
    """{distribution: Requirement} for Ray's direct requirements, parsed with `packaging` (the machine's, else the
    kit's own copy)."""
    try:
        from packaging.requirements import Requirement
    except ImportError:
        sys.path.append(str(kit / "deps" / "packaging"))
        from packaging.requirements import Requirement
    out = {}
    for text in requires:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate():
            out[_norm(req.name)] = req
    return out


def choose(manifest: dict, kit: Path) -> tuple[list[str], list[str]]:
    """(dependencies to add from the kit, notes on those the machine already has)."""
    reqs = rejected(manifest.get("ray_requires", []), kit)
    add, have = [], []
    for name, kit_version in manifest["deps"].items():
        mine = installed(name)
        req = reqs.get(_norm(name))
        if mine is None:
            add.append(name)
        elif req is not None and not req.specifier.contains(mine, prereleases=True):
            add.append(name)
            have.append(f"{name} {mine} (rejected by ray: {req}; the kit's {kit_version} shadows it)")
        else:
            have.append(f"{name} {mine}")
    return add, have


def extract(archive: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:xz") as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, filter="data")  # no paths outside dest, no device files
        else:
            tar.extractall(dest)


def unpack(archive: Path, dest: Path) -> tuple[Path, list[str], list[str]]:
    site = dest / "site"
    if site.exists():
        raise SystemExit(2)
    kit = dest / "kit"
    extract(archive, kit)
    manifest = json.loads((kit / "manifest.json").read_text())
    add, have = choose(manifest, kit)
    shutil.move(str(kit / "ray"), str(site))
    for name in add:
        for entry in (kit / "deps" / name).iterdir():
            shutil.move(str(entry), str(site / entry.name))
    return site, add, have


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python3 tests/gpu/unpack_ray_kit.py <kit.tar.xz> <dest>", file=sys.stderr)
        return 2
    archive, dest = Path(argv[0]), Path(argv[1])
    if not archive.is_file():
        print(f"unpack_ray_kit: no kit at {archive}; build it with tests/gpu/make_ray_kit.py", file=sys.stderr)
        return 2
    want = re.search(r"cp(\d)(\d+)", archive.name)
    here = f"{sys.version_info.major}{sys.version_info.minor}"
    if want and want.group(1) + want.group(2) != here:
        print(
            f"unpack_ray_kit: {archive.name} is for CPython {want.group(1)}.{want.group(2)}, this is "
            f"{sys.version_info.major}.{sys.version_info.minor}; build one with --python-version",
            file=sys.stderr,
        )
        return 2
    if (dest / "site").exists():
        print(f"unpack_ray_kit: {dest / 'site'} exists; remove it or pick another <dest>", file=sys.stderr)
        return 2
    site, add, have = unpack(archive, dest)
    print(f"ray kit: {site}; added from the kit: {', '.join(add) or 'none'}")
    print(f"ray kit: the machine's own: {', '.join(have) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
