"""workers.connect: a local Ray listens on the loopback interface only; a cluster started the standard way
(`ray start --head`, token authentication on where the user has a token) is joined with --address as the README
says, and one without the token here fails in one line saying what to set.

Each test runs its Ray in subprocesses (the test session has its own Ray), with its own port and temp folder, and
stops only the processes it started."""

import ast
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

psutil = pytest.importorskip("psutil")
pytest.importorskip("ray")

LISTENERS = textwrap.dedent("""
    import os, psutil, ray
    from hetero.scheduler import workers
    workers.connect(num_cpus=1)
    ray.get(ray.remote(lambda: os.getpid()).remote())       # a worker too
    mine = {p.pid for p in psutil.Process().children(recursive=True)} | {os.getpid()}
    print("LISTEN", [c.laddr.ip for c in psutil.net_connections("inet")
                     if c.status == psutil.CONN_LISTEN and c.pid in mine])
    ray.shutdown()
""")


def _env(**extra) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
    }
    return env | extra


def _loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%")[0])
    return addr.is_loopback or getattr(addr, "ipv4_mapped", None) is not None and addr.ipv4_mapped.is_loopback


def test_a_local_ray_listens_on_the_loopback_interface_only(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", LISTENERS],
        capture_output=True,
        text=True,
        timeout=180,
        env=_env(HETERO_CACHE_DIR=str(tmp_path)),
    )
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("LISTEN")), None)
    assert line, out.stderr[-3000:]
    ips = ast.literal_eval(line.split(" ", 1)[1])
    assert ips and all(_loopback(ip) for ip in ips), ips  # GCS, raylet, driver and worker alike


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(head: subprocess.Popen, tag: str) -> None:
    """The head's process group, then any process left whose command line names this test's temp folder."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(head.pid, sig)
            head.wait(timeout=20)
            break
        except (ProcessLookupError, subprocess.TimeoutExpired):
            continue
    left = [p for p in psutil.process_iter(["cmdline"]) if any(tag in a for a in (p.info["cmdline"] or []))]
    for p in left:
        p.kill()
    psutil.wait_procs(left, timeout=10)


@pytest.mark.slow
def test_joining_a_head_started_with_ray_start():
    tmp = Path(tempfile.mkdtemp(prefix="hray-", dir="/tmp"))  # short: Ray's socket paths live under it
    token = tmp / "token"
    token.write_text(secrets.token_hex(32))
    port = _free_port()
    env = _env(RAY_AUTH_TOKEN_PATH=str(token), HETERO_CACHE_DIR=str(tmp))
    ray_cli = Path(sys.executable).with_name("ray")
    head = subprocess.Popen(
        [
            str(ray_cli),
            "start",
            "--head",
            "--port",
            str(port),
            "--num-cpus",
            "1",
            "--include-dashboard=false",
            "--temp-dir",
            str(tmp / "r"),
            "--block",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert head.poll() is None, head.stderr.read().decode()[-3000:]
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, "the head never listened"
            time.sleep(0.5)
        argv = [
            sys.executable,
            "-m",
            "bench.schedule",
            "--devices",
            "numba",
            "--policy",
            "dmda",
            "--tasks",
            "mixed:4",
            "--size",
            "quick",
            "--address",
            f"127.0.0.1:{port}",
            "--from-results",
            "",
            "--model",
            str(tmp / "pm.json"),
            "--out",
            str(tmp / "out"),
            "--check",
            "all",
        ]
        run = subprocess.run(argv + ["--name", "joined"], env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
        assert (tmp / "out" / "joined" / "schedule.csv").exists()
        # without the token here (nor in ~/.ray): one line naming what to set, exit 2
        bare = _env(HOME=str(tmp / "home"), HETERO_CACHE_DIR=str(tmp))
        run = subprocess.run(argv + ["--name", "refused"], env=bare, capture_output=True, text=True, timeout=300)
        last = run.stderr.strip().splitlines()[-1]
        assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-3000:]
        assert "RAY_AUTH_TOKEN" in last and f"127.0.0.1:{port}" in last, last
    finally:
        _stop(head, str(tmp))
        shutil.rmtree(tmp, ignore_errors=True)
