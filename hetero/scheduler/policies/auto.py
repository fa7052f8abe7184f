"""auto: the policy right for the shape of the work, chosen by rule when the run plans.

- a batch of independent tasks: dmda, whose LP shares give each device the kinds it is comparatively best at and
  whose earliest-finish rule balances the end (on a stream of requests, earliest finish alone);
- a task graph: dmda or heteroprio, whichever the simulator (hetero.scheduler.simulate) finishes first on the
  perf model's predictions for these tasks and devices. Neither wins on every machine: heteroprio takes the
  ready task each free device is comparatively best at, highest upward rank first, so the critical path is not
  left waiting on a slow device; dmda sends each ready task, highest rank first, where it is predicted to finish
  earliest. Which matters more depends on how far apart the devices' speeds are, kind by kind, so it is
  measured, not assumed: each simulation costs milliseconds on sets of a few hundred tasks. dmda unless
  heteroprio's simulated makespan is shorter by more than SIM_MARGIN: the simulation runs on predictions, so a
  smaller difference is within their error. Heteroprio where the simulations cannot be made (a prediction
  missing) or cost too much (more than SIMULATE_UP_TO tasks);
- a stream of requests: heteroprio. The LP shares need the whole set at once, and earliest finish alone spends
  a fast device's time on kinds it is only a little faster at, so a mix sustains less load before its queues
  grow; taking what each device is comparatively best at keeps the most throughput.
"""

from __future__ import annotations

from dataclasses import replace

# The candidates are imported with auto, not when a run plans: dmda's LP imports scipy, most of a second that
# would otherwise land inside the makespan of the first run a process makes (the plan is timed with the run).
from hetero.scheduler.policies import dmda, heteroprio  # noqa: F401
from hetero.scheduler.policies.base import Policy
from hetero.scheduler.simulate import simulate

_HOOKS = ("commit", "pulls", "pooled", "lookahead", "max_sim_tasks")
GRAPH_CANDIDATES = ("dmda", "heteroprio")  # the first unless another is simulated faster by SIM_MARGIN
SIM_MARGIN = 0.02  # a fraction of the first candidate's simulated makespan
SIMULATE_UP_TO = 2000  # tasks in a graph for which auto simulates its candidates before choosing


def choose(tasks, streaming: bool = False) -> str:
    """The policy the shape of the work points to: dmda on a batch, heteroprio on a graph or a stream (on a graph
    Auto.plan may then simulate both candidates and take the faster)."""
    return "heteroprio" if streaming or any(t.deps for t in tasks) else "dmda"


def simulated_makespans(tasks, devices, model) -> dict | None:
    """GRAPH_CANDIDATES' makespans (name -> seconds) simulated on the model's predictions; None when some device
    that runs a task has no prediction for it, or there are more than SIMULATE_UP_TO tasks. The devices are
    copied with empty queues and the model is only read: the run's own are not touched."""
    from hetero.scheduler.costs import capable, predict
    from hetero.scheduler.policies import make

    if len(tasks) > SIMULATE_UP_TO:
        return None
    if any(predict(model, t, d) is None for t in tasks for d in capable(t, devices)):
        return None
    spans = {}
    for name in GRAPH_CANDIDATES:
        fresh = [replace(d, queue_end=0.0, outstanding=0, exploring=set()) for d in devices]
        spans[name] = simulate(tasks, fresh, make(name), _Predictions(model)).makespan
    return spans


def pick(spans: dict) -> str:
    """The first of GRAPH_CANDIDATES unless another's simulated makespan (`spans`, name -> seconds) is shorter
    than it by more than SIM_MARGIN; the shortest of those."""
    first = GRAPH_CANDIDATES[0]
    faster = [n for n in GRAPH_CANDIDATES[1:] if spans[n] < spans[first] * (1 - SIM_MARGIN)]
    return min(faster, key=lambda n: spans[n]) if faster else first


class _Predictions:
    """The perf model's predictions only: the simulator's driver teaches a model with add() each simulated
    task's time, and a simulated time must never enter the user's model as a measurement (it would also hide
    from a cold run's policy which kinds it has yet to measure). Each (device, task kind) is looked up once: the
    simulations ask for the same few hundreds of times, and their time counts in the run's makespan."""

    def __init__(self, model):
        self._predict, self._seen = model.predict, {}

    def predict(self, backend, device, case):
        key = (backend, device, id(case))  # the tasks hold their cases for as long as this object lives
        if key not in self._seen:
            self._seen[key] = self._predict(backend, device, case)
        return self._seen[key]


class Auto(Policy):
    name = "auto"
    revised = "2026-12-07T15:30+00:00"  # graphs: dmda unless heteroprio is simulated faster by SIM_MARGIN

    def __init__(self):
        self.inner: Policy | None = None
        self.simulated: dict | None = None  # the graph candidates' simulated makespans, where it simulated them

    def plan(self, tasks, devices, model):
        from hetero.scheduler.policies import make

        name = choose(tasks, self.streaming)
        if name == "heteroprio" and not self.streaming:
            self.simulated = simulated_makespans(tasks, devices, model)
            name = pick(self.simulated) if self.simulated else name
        self.inner = make(name)
        self.inner.streaming = self.streaming
        self.inner.plan(tasks, devices, model)
        for attr in _HOOKS:  # the driver reads them after plan()
            setattr(self, attr, getattr(self.inner, attr))
        # a replay of a run made before either rule changed simulates a different policy from the one that ran
        self.revised = max(r for r in (Auto.revised, self.inner.revised) if r)

    def sim_limit(self, tasks, streaming=False):
        """The chosen policy's limit; on a graph, the lower of its candidates' (the choice is made later)."""
        from hetero.scheduler.policies import make

        name = choose(tasks, streaming)
        if name != "heteroprio" or streaming:
            return make(name).max_sim_tasks
        limits = [make(n).max_sim_tasks for n in GRAPH_CANDIDATES]
        return min((x for x in limits if x is not None), default=None)

    def placing(self) -> str:
        return self.inner.name if self.inner else self.name

    def order(self, ready):
        return self.inner.order(ready)

    def place(self, task, devices, model, now):
        return self.inner.place(task, devices, model, now)

    def assign(self, ready, devices, model, now):
        return self.inner.assign(ready, devices, model, now)

    def begin(self, now):
        self.inner.begin(now)

    def placed(self, task, device, predicted):
        self.inner.placed(task, device, predicted)

    def ended(self, task, device, seconds=None):
        self.inner.ended(task, device, seconds)

    def wants(self, device, devices, model, now):
        return self.inner.wants(device, devices, model, now)
