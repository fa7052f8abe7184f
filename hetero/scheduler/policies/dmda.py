"""dmda: StarPU's deque-model data-aware policy, guided on batches by the LP area relaxation's shares."""

from __future__ import annotations

from hetero.scheduler.costs import capable, predict, task_seconds, transfer
from hetero.scheduler.device import kind
from hetero.scheduler.graph import upward_ranks
from hetero.scheduler.policies.base import Policy
from hetero.scheduler.policies.lp_shares import Shares, first_free, lp_quota, pool_of
from hetero.scheduler.slips import Slips, guarded

# On a batch, dmda scales a device's predictions by how far off they have been on it in this run: a mean of
# measured / predicted over its tasks, each new one weighing DRIFT, each ratio clipped to [1/DRIFT_CLIP,
# DRIFT_CLIP]. The perf model learns each task kind by itself, and most kinds of a batch come a few times, so a
# device running faster or slower as a whole than in the runs the model learnt from (a shared VM's speed varies
# from run to run) would stay mispredicted for every kind. Graphs keep the model's predictions (replays of
# graph runs showed no gain from the drift).
DRIFT = 0.1
DRIFT_CLIP = 2.0


class Dmda(Policy):
    """StarPU's dmda: minimise alpha*(finish - best finish) + beta*transfer; finish = max(queue_end, now +
    transfer) + predicted compute. A device with no prediction for the task kind gets it first (one at a time),
    so it is measured. Ready tasks are placed highest upward rank first (StarPU's dmdas with rank priorities).

    On a batch of independent tasks it is also guided by the LP area relaxation (lp_quota; devices that
    time-slice shared cores count as one there; the books in lp_shares.Shares): a task goes to the
    earliest-finishing device among those whose pool still has a share of its kind, unless another pool takes it
    and so shortens the projected makespan (_by_quota), which is how a pool done with its share takes work at the
    end, and how the plan bends when its predictions prove wrong. Greedy earliest finish alone hands a slow device
    the long tasks it is much slower at once the fast device's queue fills, while work it runs nearly as fast
    waits. Graphs keep the plain rule (there the LP ignores the dependencies that decide the order), except that a
    device sharing cores finishes no sooner than the cores have run its mates' queues too (_sliced), and that a
    task leaves its fastest device only if another finishes it first even with its prediction stretched by that
    device's error (hetero.scheduler.slips.guarded)."""

    name = "dmda"
    pooled = True
    revised = "2026-12-07T15:30+00:00"  # graphs: a task leaves its fastest device only past its error
    # On a batch, one task running and one waiting, which is all a device actor takes in at once (late binding:
    # every later choice is made on measured queues). On a graph, every ready task is sent at once: there a
    # device's next task is often a child released by the task just ended, and the round trip through the driver
    # (trace.notify_latency) outlasts the shortest tasks.
    BATCH_COMMIT = 2
    # A pass stops after this many held placements in a row: a device given no share always has a free slot, and
    # would otherwise keep every pass placing all ready tasks again; held placements only inform later ones.
    lookahead = 8

    def __init__(self, alpha: float = 1.0, beta: float = 1.0):
        self.alpha, self.beta, self.rank = alpha, beta, {}
        self.shares: Shares | None = None  # on a batch whose every kind is measured everywhere
        self.slips: Slips | None = None  # on a graph
        self._kinds, self._members = {}, set()
        self._reset(None)

    @property
    def quota(self) -> dict:
        """pool -> kind -> tasks it has left of its LP share ({} on graphs and while a kind is unmeasured)."""
        return self.shares.quota if self.shares else {}

    def _reset(self, model) -> None:
        """A run's bookkeeping, empty. preds: (backend, device, kind) -> the model's prediction (the drift apart),
        dropped for a device when one of its tasks of that workload and dtype ends; drift: (backend, device) ->
        how far off the model has been there this run; raw: task id -> the model's prediction when sent."""
        self._preds, self._sent, self._resent = {}, set(), False
        self._model, self._drift, self._raw = model, {}, {}

    def plan(self, tasks, devices, model):
        graph = any(t.deps for t in tasks)
        self.rank = upward_ranks(tasks, devices, model)
        self._kinds = {kind(t): t for t in tasks}  # a task of each kind, to price a share
        self._members = {pool_of(d) for d in devices}
        quota = {} if graph or self.streaming else lp_quota(tasks, devices, model)
        self.shares = Shares(quota, self._kinds, devices, self._price) if quota else None
        self.slips = Slips(devices) if graph else None
        self._reset(model)
        self.commit = None if graph else self.BATCH_COMMIT

    def begin(self, now):
        if self.shares:
            self.shares.begin()

    def ended(self, task, device, seconds=None):
        if self.slips:
            self.slips.ended(task, device, seconds)
        drop = (device.backend, device.device)
        raw = self._raw.pop(task.id, None)
        if self.shares and seconds is not None and raw:
            # how far off the model is on this device in this run, over every kind (DRIFT)
            ratio = min(DRIFT_CLIP, max(1 / DRIFT_CLIP, seconds / raw))
            self._drift[drop] = (1 - DRIFT) * self._drift.get(drop, 1.0) + DRIFT * ratio
        # the model learnt this kind's time on the device, and with it its FLOP fit for the workload and dtype,
        # which predicts the kinds it has not measured: those predictions change, the rest only by the drift.
        # A model that does not learn (no add(): the simulator's profiles) changes none.
        if hasattr(self._model, "add"):
            same = self._family(kind(task))
            self._preds = {k: v for k, v in self._preds.items() if k[:2] != drop or self._family(k[2]) != same}
        if self.shares:
            self.shares.ended(pool_of(device))

    def placed(self, task, device, predicted):
        self._resent |= task.id in self._sent  # sent again: its device died
        self._sent.add(task.id)
        if self.slips:
            self.slips.placed(task, predicted)
        if self.shares:
            self._raw[task.id] = predicted
            self.shares.sent(task, kind(task), device)

    def order(self, ready):
        return sorted(ready, key=lambda t: -self.rank.get(t.id, 0.0))

    def place(self, task, devices, model, now):
        c = capable(task, devices)
        k = kind(task)
        if not self.shares:  # with shares every pool has a prediction for every kind (lp_quota)
            for d in c:
                if self._predict(model, task, d, k) is None and k not in d.exploring:
                    d.exploring.add(k)
                    return d
        if not c:
            return None
        if self.shares:
            return self._by_quota(task, k, c, devices, model, now)
        fin = _sliced(self._finishes(task, k, c, devices, model, now), c, devices, now)
        if self.slips:
            p = {d.name: task_seconds(model, task, d, devices, self._predict(model, task, d, k)) for d in c}
            ends = guarded({n: f for n, (f, _) in fin.items()}, p, self.slips, c)
            fin = {n: (ends[n], tr) for n, (_, tr) in fin.items()}
        return self._earliest(task, k, c, devices, model, now, fin)

    def _predict(self, model, task, d, k):
        """The model's prediction times the device's drift. The model's is cached until the device ends a task
        of the same workload and dtype (ended()): a pass asks for several a task end, and the model's lookup (a
        history keyed by the shape's text, or a FLOP fit) is a large part of the driver's time a task."""
        key = (d.backend, d.device, k)
        got = self._preds.get(key, self)  # self: not asked yet (None is a prediction: unmeasured)
        if got is self:
            got = self._preds[key] = predict(model, task, d)
        return got * self._drift.get(key[:2], 1.0) if got is not None else None

    def _price(self, pool, k) -> float:
        """Predicted seconds of a kind-k task on one of `pool`'s devices, its call overhead apart (with shares
        every kind has a prediction on every pool that runs it: lp_quota returns {} until then)."""
        return self._predict(self._model, self._kinds[k], self.shares.sample[pool], k) or 0.0

    def _family(self, k) -> tuple:
        """(workload, dtype) of kind k: what the model's FLOP fit for it is keyed by."""
        case = self._kinds[k].case
        return case.workload, case.dtype

    def _finishes(self, task, k, c, devices, model, now) -> dict:
        """device name -> (predicted finish, transfer seconds) of `task` on each of `c`."""
        out = {}
        for d in c:
            tr = transfer(task, d)
            p = self._predict(model, task, d, k)
            out[d.name] = (max(d.queue_end, now + tr) + task_seconds(model, task, d, devices, p), tr)
        return out

    def _earliest(self, task, k, c, devices, model, now, fin: dict | None = None):
        fin = fin or self._finishes(task, k, c, devices, model, now)
        best = min(fin[d.name][0] for d in c)
        return min(c, key=lambda d: self.alpha * (fin[d.name][0] - best) + self.beta * fin[d.name][1])

    def _by_quota(self, task, k, c, devices, model, now):
        """The earliest finish among the devices whose pool has a share of this kind left, unless handing the
        task to another pool shortens the projected makespan: the latest over pools of its first device's queue
        end plus an even part of the pool's unplaced share at today's predictions (the LP's plan as it now
        stands). The quota alone would keep a device to its share when its tasks run longer than planned, or to
        a share rounded up to one long task (an LP share of 0.7 of a long task would give a slow device all of
        it). Pools, not devices, so that the simulator's one-device-per-pool view changes no decision."""
        sh = self.shares
        left = {}
        for d in c:
            if (pool := pool_of(d)) not in left:
                left[pool] = sh.left(pool, k)
        share = [d for d in c if left[pool_of(d)] > 0]
        fin = self._finishes(task, k, c, devices, model, now)
        best = self._earliest(task, k, share or c, devices, model, now, fin)
        owner = sh.owner(k, best)
        if share and len(share) < len(c):
            first = first_free(devices)
            ends = sh.projected(first, now)
            cut = sh.cut(owner, k)
            span, moved = sh.span(ends, now), None
            for pool, d in (first if len(c) == len(devices) else first_free(c)).items():
                if left[pool] > 0:
                    continue
                # d takes it: its pool's end grows by the task, the owner pool's unplaced share shrinks by it
                new = dict(ends)
                new[owner] -= cut
                new[pool] += fin[d.name][0] - max(d.queue_end, now)
                if (s := sh.span(new, now)) < span - 1e-9:
                    moved, span = d, s
            if moved is not None:
                best = moved  # charged to `owner`, the pool whose share it came from
        sh.charge(task, k, owner)
        return best

    def wants(self, device, devices, model, now):
        """False when `device`'s pool has none of its share left and no task could move to it: whatever it took
        would end no earlier than the projected makespan, on the pool or on the cores it shares (_by_quota moves
        a task only to shorten it). That holds until the next task ends: a placement, sent or held, leaves a
        one-device pool's projected end as it was (its queue grows by what its share shrinks). It ends the passes
        in which only such a device has a free slot (a slow device on another's cores, given no share, always
        has one), which would otherwise place `lookahead` tasks more each."""
        sh, pool = self.shares, pool_of(device)
        if (
            not sh
            or sh.work is None
            or self._resent
            or sh.work.get(pool, (0.0, 0))[1] > 0
            or {pool_of(d) for d in devices} != self._members
        ):
            return True  # it has a share left; or a task was sent twice (a device died): EFT may place it
        ends = sh.projected(first_free(devices), now)
        span = sh.span(ends, now) - 1e-9
        alone, shared = sh.quickest(pool)
        if ends[pool] + alone >= span:
            return False
        for group in sh.groups:
            if pool in group and now + sum(ends[q] - now for q in group if q in ends) + shared[group] >= span:
                return False
        return True


def _sliced(fin: dict, c: list, devices: list, now: float) -> dict:
    """`fin` (device name -> (finish, transfer)) for devices that time-slice their cores with others: a task there
    ends no sooner than the cores have also run what their mates have queued (plain earliest finish would send
    a task to an idle device on a busy device's cores, where it runs at a fraction of its speed). dmda's batch
    projection (Shares.span) counts the sharing in its own way."""
    out = dict(fin)
    for d in c:
        if d.core_group is None:
            continue
        mates = sum(
            max(0.0, e.queue_end - now) for e in devices if e is not d and e.alive and e.core_group == d.core_group
        )
        if mates:
            end, tr = fin[d.name]
            out[d.name] = (end + mates, tr)
    return out
