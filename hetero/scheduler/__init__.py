"""Placing tasks on heterogeneous devices by measured throughput (StarPU's dmda and HEFT, on Ray actors).

    perfmodel.py  per-(device, workload, footprint) history + a FLOP-count fit; saved to disk and reloaded
    policies.py   dmda, heft, eager, round-robin, random, single: plain objects, no Ray (a simulator reuses them)
    tasks.py      task sets: mixed (independent), transformer and gan (task graphs), their inputs and checks
    actors.py     one Ray actor per device, pinned to its own cores
    runtime.py    the driver loop: ready tasks -> policy -> actor queues; retries when a device dies
    report.py     makespan, throughput, utilisation, lower bounds (LP area, critical path), Chrome trace
"""
