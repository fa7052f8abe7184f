"""A third-party backend, installed as a package with a `hetero.backends` entry point, shows up in bench.run
with no change to this repository."""

import json
import os
import subprocess
import sys
import textwrap

import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PLUGIN = '''
"""A throwaway plugin: matmul via NumPy, timed on the wall clock."""
import numpy as np
from hetero.backends.base import Backend, Device, HostKernel


class DemoBackend(Backend):
    name = "demo"
    dtypes = {"matmul": ("float32",)}

    def device(self):
        return Device(name="demo device", kind="cpu", peak_source="none")

    def _prepare(self, case, inputs):
        a, b = inputs["a"], inputs["b"]
        return HostKernel(lambda out: np.matmul(a, b, out=out), np.empty((a.shape[0], b.shape[1]), np.float32))
'''


def test_plugin_package_installs_and_runs_in_bench_run(tmp_path):
    pkg = tmp_path / "src"
    (pkg / "hetero_demo_plugin").mkdir(parents=True)
    (pkg / "hetero_demo_plugin" / "__init__.py").write_text(PLUGIN)
    (pkg / "pyproject.toml").write_text(
        textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "hetero-demo-plugin"
        version = "0.1"
        [project.entry-points."hetero.backends"]
        demo = "hetero_demo_plugin:DemoBackend"
    """)
    )
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(pkg),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    listing = subprocess.run(
        [sys.executable, "-m", "bench.run", "--list"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300
    )
    assert "demo" in listing.stdout and "available" in listing.stdout
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--workload",
            "matmul",
            "--quick",
            "--backends",
            "demo",
            "--out",
            str(tmp_path / "out"),
            "--name",
            "p",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(tmp_path / "out" / "p" / "bench.csv")
    demo = df[df.backend == "demo"]
    ran = demo[demo.status != "skipped"]
    assert len(ran) == 2 and (ran.status == "ok").all() and ran.correct.all()
    # a plugin that declares no Backend.features is never handed a case that uses one (batched matmul)
    assert demo[demo.status == "skipped"].error.str.contains("batched operands").all() and len(demo) == 3
    meta = json.loads((tmp_path / "out" / "p" / "meta.json").read_text())  # which package the backend came from
    assert meta["plugins"]["demo"] == {
        "target": "hetero_demo_plugin:DemoBackend",
        "distribution": "hetero-demo-plugin",
        "version": "0.1",
    }
