"""Placement policies, one file each (StarPU's sched_policies): base.py holds the interface, this module the
registry. Importing it is cheap: a policy's module is imported when the policy is first made.

    single, round-robin, random, eager   the baselines
    heft                                 HEFT's static plan by upward rank
    heteroprio                           a pulling policy: each free device takes what it is comparatively best at
    dmda                                 earliest predicted finish, guided on batches by the LP area relaxation
    auto                                 the default: dmda on a batch, heteroprio on a task graph (auto.py)
"""

from __future__ import annotations

import importlib

from hetero.errors import choices

# name -> (module, class), in the order tables list them: the baselines first
_WHERE = {
    "single": ("single", "Single"),
    "round-robin": ("round_robin", "RoundRobin"),
    "random": ("random", "Random"),
    "eager": ("eager", "Eager"),
    "heft": ("heft", "Heft"),
    "heteroprio": ("heteroprio", "HeteroPrio"),
    "dmda": ("dmda", "Dmda"),
    "auto": ("auto", "Auto"),
}
ORDER = list(_WHERE)  # `--policy all`: every policy, auto (the default) last
DEFAULT = "auto"


def policy_class(name: str):
    if name not in _WHERE:
        raise choices("policy", name, ORDER + ["all"])
    module, cls = _WHERE[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def make(name: str = DEFAULT, seed: int = 0):
    """A fresh policy object by name, `auto` by default (random takes the seed)."""
    cls = policy_class(name)
    return cls(seed) if name == "random" else cls()
