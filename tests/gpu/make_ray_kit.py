"""Pack a stripped Ray and its pure-Python requirements into one tar.xz for a machine with no network.

The GPU test machine has no Ray and no package index, and takes at most 64 MiB beside the working tree, less than
Ray's wheel. So Ray's wheel for that machine's Python is fetched here (pip download), the parts a local
`ray.init` and a few actors never import are dropped (rllib, tune, train, serve, data, llm, the Java jars, the
dashboard's web client), and Ray's core requirements are fetched as wheels too. The archive holds:

    ray/           the stripped wheel, unzipped (a site-packages fragment: ray/, ray-<v>.dist-info/)
    deps/<dist>/   each requirement's wheel, unzipped; tests/gpu/unpack_ray_kit.py adds only those the target
                   Python lacks (or has in a version Ray does not accept), so the machine's own packages win
    manifest.json  the Ray version, target Python, platform, and each dependency's requirement

    python tests/gpu/make_ray_kit.py                       # Ray as installed here, for CPython 3.12 x86-64
    python tests/gpu/make_ray_kit.py --python-version 3.11 --out .gpukit/kit/raykit-cp311.tar.xz
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Subpackages a local Ray with actors never imports; the jars alone are a third of the wheel.
STRIP = (
    "ray/rllib/",
    "ray/tune/",
    "ray/train/",
    "ray/serve/",
    "ray/data/",
    "ray/llm/",
    "ray/jars/",
    "ray/dashboard/client/",
)
# manylinux tags the target may match; pip matches each tag exactly, so list the ones wheels use.
PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
)
LIMIT_BYTES = 64 * 1024**2


def installed_ray_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("ray")
    except Exception:
        return None


def pip_download(specs: list[str], dest: Path, python_version: str, deps: bool) -> None:
    """Wheels for the target (binary only: the target cannot build anything) into `dest`."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "-q",
        "--only-binary=:all:",
        "--python-version",
        python_version,
        "--implementation",
        "cp",
        "-d",
        str(dest),
    ] + [a for p in PLATFORMS for a in ("--platform", p)]
    subprocess.run(cmd + ([] if deps else ["--no-deps"]) + specs, check=True)


def wheel_name(path: Path) -> tuple[str, str]:
    """(normalized distribution name, version) from a wheel's file name."""
    name, version = path.name.split("-")[:2]
    return re.sub(r"[-_.]+", "-", name).lower(), version


def core_requirements(ray_wheel: Path) -> list[str]:
    """Ray's Requires-Dist lines that no extra guards (its core requirements), as written."""
    with zipfile.ZipFile(ray_wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        lines = z.read(meta).decode().splitlines()
    return [ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Requires-Dist:") and "extra ==" not in ln]


def unzip(wheel: Path, dest: Path, skip: tuple[str, ...] = ()) -> int:
    """Unzip a wheel into `dest`, leaving out members under `skip`; returns the bytes written."""
    total = 0
    with zipfile.ZipFile(wheel) as z:
        for info in z.infolist():
            if info.is_dir() or info.filename.startswith(skip):
                continue
            target = dest / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            with z.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
            if (info.external_attr >> 16) & 0o111:  # the raylet and GCS server binaries must stay executable
                target.chmod(0o755)
            total += info.file_size
    return total


def fetch(args) -> tuple[Path, list[Path]]:
    """Ray's wheel and the wheels of its core requirements (resolved by pip for the target), in args.wheels."""
    cache = Path(args.wheels) / f"cp{args.python_version.replace('.', '')}"
    cache.mkdir(parents=True, exist_ok=True)
    pip_download([f"ray=={args.ray_version}"], cache, args.python_version, deps=True)
    wheels = sorted(cache.glob("*.whl"))
    ray = [w for w in wheels if wheel_name(w) == ("ray", args.ray_version)]
    if not ray:
        sys.exit(f"make_ray_kit: no ray-{args.ray_version} wheel in {cache}")
    names = {wheel_name(w)[0] for w in wheels}
    for n in names:
        if sum(wheel_name(w)[0] == n for w in wheels) > 1:
            sys.exit(f"make_ray_kit: two versions of {n} in {cache}; delete the folder and run again")
    return ray[0], [w for w in wheels if wheel_name(w)[0] != "ray"]


def stage(ray_wheel: Path, deps: list[Path], work: Path, python_version: str) -> dict:
    """The archive's tree in `work`; returns the manifest."""
    size = unzip(ray_wheel, work / "ray", STRIP)
    reqs = core_requirements(ray_wheel)
    manifest = {
        "ray": wheel_name(ray_wheel)[1],
        "python": python_version,
        "platforms": list(PLATFORMS),
        "stripped": list(STRIP),
        "ray_bytes": size,
        "ray_requires": reqs,
        "deps": {},
    }
    for w in deps:
        name, version = wheel_name(w)
        unzip(w, work / "deps" / name)
        manifest["deps"][name] = version
    (work / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def pack(work: Path, out: Path) -> None:
    """tar + xz (all cores) into out, written whole: a half-written archive never takes the final name."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "wb") as f:
        tar = subprocess.Popen(["tar", "-C", str(work), "-cf", "-", "."], stdout=subprocess.PIPE)
        subprocess.run(["xz", "-6", "-T0", "-c"], stdin=tar.stdout, stdout=f, check=True)
        if tar.wait() != 0:
            sys.exit("make_ray_kit: tar failed")
    os.replace(tmp, out)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python tests/gpu/make_ray_kit.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument(
        "--ray-version",
        default=installed_ray_version() or "2.60.0",
        help="Ray to pack (default: the one installed here)",
    )
    p.add_argument("--python-version", default="3.12", help="the target's CPython, major.minor (default 3.12)")
    p.add_argument("--wheels", default=str(ROOT / ".gpukit" / "wheels"), help="wheel cache (default .gpukit/wheels)")
    p.add_argument("--out", default=None, help="archive (default .gpukit/kit/raykit-cp<ver>.tar.xz)")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if not re.fullmatch(r"3\.\d+", args.python_version):
        sys.exit(f"make_ray_kit: --python-version {args.python_version!r} must be major.minor, e.g. 3.12")
    out = Path(args.out or ROOT / ".gpukit" / "kit" / f"raykit-cp{args.python_version.replace('.', '')}.tar.xz")
    ray_wheel, deps = fetch(args)
    with tempfile.TemporaryDirectory(prefix="raykit-") as tmp:
        manifest = stage(ray_wheel, deps, Path(tmp), args.python_version)
        pack(Path(tmp), out)
    size = out.stat().st_size
    print(
        f"wrote {out}: {size / 1024**2:.1f} MiB (ray {manifest['ray']} for CPython {args.python_version}, "
        f"{manifest['ray_bytes'] / 1024**2:.0f} MiB unpacked; deps: "
        + ", ".join(f"{k} {v}" for k, v in manifest["deps"].items())
        + ")"
    )
    if size > LIMIT_BYTES // 2:
        print(f"warning: {out} is over half the {LIMIT_BYTES // 1024**2} MiB that may travel", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
