"""Placing tasks on heterogeneous devices by measured throughput (StarPU's dmda and HEFT, on Ray actors or a
simulated clock). One driver loop serves both; data flows tasks -> policy -> executor -> perf model.

    tasks.py       task sets: mixed (independent), transformer and gan (task graphs), their inputs and checks
    device.py      a device as the scheduler sees it (DeviceSpec, DeviceState) and task kinds
    costs.py       what a task costs a device, from the perf model's predictions
    policies/      one file a policy (single, round-robin, random, eager, heft, heteroprio, dmda) and the registry
    placement.py   the placement step; pools.py: identical devices shown as one
    driver.py      the one driver loop: ready set, placement pass, task ends, what the model learns
    runtime.py     Ray: connect, one actor per device (actors.py), the driver's Ray executor, calibration
    simulate.py    the driver's discrete-event executor (core sharing, completion-notice latency)
    perfmodel.py   per-(device, workload, footprint) history + a FLOP-count fit; saved to disk and reloaded
    trace.py       a run's Chrome trace, and what a replay reads from it; replay.py: a real run simulated again
    bounds.py      lower bounds (LP area, critical path); summary.py: a run's row and table
    experiment.py  bench.schedule's protocol: repeats, the median-makespan run, gap statistics
    profiles.py    device kinds for the simulator (measured, FPGA model, roofline); lp.py: the LP itself
"""
