"""Ray's side of a run: start Ray (or join a cluster), one actor per device (hetero.scheduler.actors) on every
node, each measured for its transfer costs, and the actors stopped again."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass

import numpy as np

from hetero.errors import HeteroError
from hetero.scheduler import actors
from hetero.scheduler.device import DeviceState
from hetero.scheduler.tasks import MIXED_WORKLOADS

OBJECT_STORE_BYTES = 1024**3


def connect(address: str | None = None, num_cpus: int | None = None, resources: dict | None = None) -> None:
    """Join `address` (or RAY_ADDRESS); else start a local Ray with fixed CPUs, no dashboard, quiet workers, its
    servers listening on the loopback interface only."""
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        # `ray start --head` turns token authentication on where this user has a token (~/.ray/auth_token,
        # RAY_AUTH_TOKEN_PATH or RAY_AUTH_TOKEN), but ray.init(address=...) sends none unless RAY_AUTH_MODE=token:
        # with RAY_AUTH_MODE unset, do what Ray does for a cluster it finds by itself (address "auto").
        if "RAY_AUTH_MODE" not in os.environ:
            try:
                from ray._private.authentication.authentication_token_setup import (
                    maybe_enable_token_auth_if_token_available as use_token_if_any,
                )

                use_token_if_any(warn_if_disabled=False)
            except ImportError:  # a Ray without token authentication
                pass
        try:
            ray.init(address=address, log_to_driver=False)
        except (ConnectionError, RuntimeError) as exc:
            chain, e = [], exc
            while e is not None:
                chain, e = chain + [e], e.__cause__ or e.__context__
            if any(type(e).__name__ == "AuthenticationError" or "InvalidAuthToken" in str(e) for e in chain):
                raise HeteroError(
                    f"cannot join the Ray cluster at {address}: it wants its authentication token; set "
                    "RAY_AUTH_TOKEN to it (`ray get-auth-token` on the head) or RAY_AUTH_TOKEN_PATH to "
                    "a file holding it, and RAY_AUTH_MODE=token"
                ) from None
            raise HeteroError(f"cannot join the Ray cluster at {address}: {str(exc).splitlines()[0]}") from None
    else:
        # Every task's output is copied into the object store. Without preallocation each copy also faults in
        # fresh shared-memory pages, which dominated a perf profile of ray.put on the 2-core VM. Preallocating
        # 1 GiB (mixed:40 holds 0.65 GiB of inputs and outputs) adds ~1 s to the start; a bigger set overflows to
        # Ray's fallback allocation on disk, slower but correct.
        # Ray's servers (GCS, raylet, workers) run what a connection sends them, and a local run serves this
        # machine only: they listen on the loopback interface. Ray makes the loopback its node address only where
        # it assumes no cluster (ray_constants.ENABLE_RAY_CLUSTER, off on Windows and macOS), so off for this start.
        from ray._private import ray_constants

        cluster = getattr(ray_constants, "ENABLE_RAY_CLUSTER", None)
        ray_constants.ENABLE_RAY_CLUSTER = False
        try:
            ray.init(
                num_cpus=num_cpus or os.cpu_count(),
                resources=resources or {},
                include_dashboard=False,
                log_to_driver=False,
                object_store_memory=OBJECT_STORE_BYTES,
                _node_ip_address="127.0.0.1",
                _system_config={"preallocate_plasma_memory": True},
            )
        finally:
            if cluster is not None:
                ray_constants.ENABLE_RAY_CLUSTER = cluster


@dataclass
class Worker:
    """A Ray actor serving one device: the scheduler's state of it, the actor, what the actor reported (its
    backend Device's description, the workloads it runs, its cores) and where it was placed."""

    state: DeviceState
    actor: object
    info: dict
    placement: actors.Placement


def start_devices(
    backends: list[str], share_cores: bool = False, strict: bool = False, device_choice: dict | None = None, warn=print
) -> tuple[list[Worker], list[str]]:
    """Actors for every backend on every node; unavailable ones are noted (or raise with strict)."""
    import ray

    nodes = [n for n in ray.nodes() if n["Alive"]]
    declared = {r for n in nodes for r in n["Resources"]}
    placements, notes = actors.plan(backends, nodes, share_cores)
    remote = ray.remote(actors.DeviceActor)
    handles = [
        (
            p,
            remote.options(**actors.options(p, declared)).remote(
                p.backend, p.cores, p.threads, (device_choice or {}).get(p.backend)
            ),
        )
        for p in placements
    ]
    infos = [(p, h, h.info.remote(list(MIXED_WORKLOADS))) for p, h in handles]
    devices = []
    for p, h, ref in infos:
        try:
            info = ray.get(ref, timeout=600)
        except Exception as exc:
            msg = f"device {p.label} unavailable: {_cause(exc)}"
            if strict:
                raise HeteroError(msg) from None
            warn(f"note: {msg}; continuing without it")
            ray.kill(h)
            continue
        if not info["supports"]:
            why = "; ".join(f"{k}: {v}" for k, v in info["reasons"].items())
            msg = f"device {p.label} runs none of the workloads ({why})"
            if strict:
                raise HeteroError(msg)
            warn(f"note: {msg}; continuing without it")
            ray.kill(h)
            continue
        lat, bw = _measure_transfer(h)
        st = DeviceState(p.label, p.backend, info["device"], lat, bw, frozenset(info["supports"]))
        devices.append(Worker(st, h, info, p))
    if not devices:
        raise HeteroError("no requested device is available; see python -m bench.run --list")
    keys = actors.share_keys([d.placement for d in devices])
    for d in devices:
        d.state.core_group = keys[d.state.name]
    return devices, notes


def _cause(exc: Exception) -> str:
    text = str(getattr(exc, "cause", None) or exc)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else type(exc).__name__


def _measure_transfer(actor, small: int = 1 << 10, big: int = 16 << 20) -> tuple[float, float]:
    """latency (s) and bandwidth (B/s) of handing an actor an object-store array: best of 3 round trips each."""
    import ray

    def best(n):
        ref = ray.put(np.zeros(n // 4, np.float32))
        ray.get(actor.touch.remote(ref))
        ts = []
        for _ in range(3):
            ref = ray.put(np.zeros(n // 4, np.float32))
            t0 = time.perf_counter()
            ray.get(actor.touch.remote(ref))
            ts.append(time.perf_counter() - t0)
        return min(ts)

    lat, tb = best(small), best(big)
    return lat, big / max(tb - lat, 1e-6)


def stop_devices(devices: list[Worker]) -> None:
    import ray

    for d in devices:
        with contextlib.suppress(Exception):
            ray.kill(d.actor)
