"""Task sets: what the scheduler places. A Task carries a Case, the ids of the tasks whose outputs it consumes,
and how its inputs are assembled; constant inputs (a task's own seeded inputs, or a layer's weights) are made on
the driver once and shared through Ray's object store.

    mixed:N        N independent tasks drawn (seeded) from the workloads' default presets and smaller shapes
    transformer:L  L layers x 4 batches of QKV matmul -> causal attention -> output proj -> MLP up -> MLP down
    gan:B          B batches of generator conv_transpose2d x3 -> discriminator conv2d x3
`size="quick"` gives tiny shapes of the same structure (tests); `inputs=False` builds the tasks without their
arrays (the simulator needs only shapes, and mixed:100000 would not fit in memory).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hetero.errors import HeteroError, choices
from hetero.workloads import Case, get
from hetero.workloads.base import Workload

MIXED_WORKLOADS = ("matmul", "attention", "conv2d", "conv_transpose2d")


@dataclass(eq=False)
class Task:
    id: int
    case: Case
    label: str
    deps: tuple[int, ...] = ()
    const: str = ""  # key of the constant inputs (own inputs or weights) in TaskSet.consts
    adapt: str = "own"  # own | rows | heads-to-rows | split-qkv | image: how dep outputs become inputs
    nbytes: float = 0.0  # input bytes
    resident: dict = field(default_factory=dict)  # device name -> input bytes already there (runtime fills)

    @property
    def flops(self) -> float:
        return get(self.case.workload).flops(self.case.p)


@dataclass
class TaskSet:
    name: str
    tasks: list[Task]
    consts: dict  # key -> dict of float32 arrays
    independent: bool


def _nbytes(case: Case) -> float:
    w = get(case.workload)
    p = case.p
    return w.bytes_moved(p, 4) - 4.0 * float(np.prod(w.out_shape(p)))


def build_inputs(task: Task, const: dict, deps: list) -> dict:
    """The inputs of `task` from its constants and its dependencies' outputs (runs on the device's actor)."""
    if task.adapt == "own":
        return const
    x = deps[0]
    p = task.case.p
    if task.adapt == "split-qkv":  # (B*S, 3*H*D) -> q, k, v each (B, H, S, D)
        qkv = x.reshape(p["B"], p["S"], 3, p["H"], p["D"]).transpose(2, 0, 3, 1, 4)
        return {n: np.ascontiguousarray(qkv[i]) for i, n in enumerate(("query", "key", "value"))}
    if task.adapt == "heads-to-rows":  # (B, H, S, D) -> (B*S, H*D)
        b, h, s, d = x.shape
        x = x.transpose(0, 2, 1, 3).reshape(b * s, h * d)
    name = "input" if task.case.workload.startswith("conv") else "a"
    return {**const, name: np.ascontiguousarray(x, dtype=np.float32)}


# -- mixed --------------------------------------------------------------------------------------------
def _smaller(w: Workload, params: dict) -> dict:
    """Half the work along the batch-like dimension (M, B, N), for a spread of task sizes."""
    p = dict(params)
    dim = {"matmul": "M", "attention": "B", "conv2d": "N", "conv_transpose2d": "N"}[w.name]
    if p[dim] >= 2:
        p[dim] //= 2
    return p


def _pool(size: str, features: bool = False) -> list[Case]:
    """The cases a batch draws from: each workload's default presets and their halves (quick: its quick presets).
    Without `features`, only the plain layouts (no decode or cross attention, GQA, masks, groups, H/W pairs,
    batched matmul): `mixed` draws from the same cases as every committed run of it, so a replay rebuilds the very
    tasks the run had; `models` draws from every preset of current models."""
    cases = []
    for name in MIXED_WORKLOADS:
        w = get(name)
        keep = [c for c in w.preset_cases("quick" if size == "quick" else "default") if features or not w.features(c.p)]
        if size == "quick":
            cases += keep
            continue
        for c in keep:
            cases += [c, w.case(_smaller(w, c.p), preset=f"{c.preset}-half")]
    return cases


@dataclass
class Draw:
    """A batch of independent tasks as arrays: task i is a task of cases[kind[i]] with id i (what `mixed` draws,
    before any Task object exists: a simulated stream of a million requests needs no more)."""

    name: str
    cases: list[Case]
    labels: list[str]
    nbytes: list[float]  # per case: its input bytes
    kind: np.ndarray  # (n,) int, index into cases

    def task(self, i: int, j: int, const: str = "") -> Task:
        return Task(i, self.cases[j], self.labels[j], const=const, nbytes=self.nbytes[j])


def draw(n: int = 40, seed: int = 0, size: str = "full", workloads=None, features: bool = False) -> Draw:
    """`n` independent tasks' kinds drawn (seeded) from _pool (`mixed` builds its tasks from them)."""
    pool = [c for c in _pool(size, features) if workloads is None or c.workload in workloads]
    if not pool:
        raise HeteroError("mixed: no workload left to draw from")
    labels = [f"{c.workload} {c.preset or c.shape}" for c in pool]
    kinds = np.random.default_rng(seed).integers(0, len(pool), n)
    return Draw(f"{'models' if features else 'mixed'}:{n}", pool, labels, [_nbytes(c) for c in pool], kinds)


def mixed(
    n: int = 40,
    seed: int = 0,
    size: str = "full",
    workloads=None,
    inputs: bool = True,
    features: bool = False,
    per_kind: bool = False,
) -> TaskSet:
    """`n` independent tasks drawn (seeded) from _pool: a batch. features: from every preset (`models:N`).
    per_kind: tasks of one kind share one set of inputs (a stream's requests: each with its own, a long stream
    overfills Ray's object store, which then spills to disk)."""
    dr = draw(n, seed, size, workloads, features)
    tasks, consts = [], {}
    for i, j in enumerate(dr.kind.tolist()):
        key = f"kind{j}" if per_kind else f"in{i}"
        if inputs and key not in consts:
            consts[key] = get(dr.cases[j].workload).make_inputs(dr.cases[j], seed * 100003 + (j if per_kind else i))
        tasks.append(dr.task(i, j, key))
    return TaskSet(dr.name, tasks, consts, independent=True)


def models(n: int = 40, seed: int = 0, size: str = "full", inputs: bool = True) -> TaskSet:
    """A batch drawn from every preset of current models: decode and cross attention, GQA, masks, depthwise and
    grouped convs, non-square strides, batched matmul, besides mixed's plain layouts."""
    return mixed(n, seed, size, inputs=inputs, features=True)


# -- graphs -------------------------------------------------------------------------------------------
def _weights(rng, shape, fan_in) -> np.ndarray:
    return (rng.standard_normal(shape, dtype=np.float32) * fan_in**-0.5).astype(np.float32)


def transformer(layers: int = 4, batches: int = 4, seed: int = 0, size: str = "full", inputs: bool = True) -> TaskSet:
    B, S, H, D = (2, 32, 2, 16) if size == "quick" else (8, 256, 6, 64)
    d, M = H * D, B * S
    rng = np.random.default_rng(seed)
    mm, att = get("matmul"), get("attention")
    consts = {}
    specs = [("qkv", (d, 3 * d)), ("proj", (d, d)), ("up", (d, 4 * d)), ("down", (4 * d, d))]
    for layer in range(layers):
        for name, shape in specs:
            consts[f"L{layer}.{name}"] = {"b": _weights(rng, shape, shape[0])}
    tasks: list[Task] = []

    def add(case, label, deps, const, adapt):
        tasks.append(Task(len(tasks), case, label, tuple(deps), const, adapt, _nbytes(case)))
        return len(tasks) - 1

    for b in range(batches):
        prev = None
        for layer in range(layers):
            tag = f"b{b}.L{layer}"
            mmc = lambda k, n: mm.case(dict(M=M, N=n, K=k))  # noqa: E731
            if prev is None:
                consts[f"x{b}"] = {"a": rng.standard_normal((M, d), dtype=np.float32), **consts[f"L{layer}.qkv"]}
                t = add(mmc(d, 3 * d), f"{tag}.qkv", [], f"x{b}", "own")
            else:
                t = add(mmc(d, 3 * d), f"{tag}.qkv", [prev], f"L{layer}.qkv", "rows")
            t = add(att.case(dict(B=B, H=H, S=S, D=D, causal=1)), f"{tag}.attn", [t], "", "split-qkv")
            t = add(mmc(d, d), f"{tag}.proj", [t], f"L{layer}.proj", "heads-to-rows")
            t = add(mmc(d, 4 * d), f"{tag}.up", [t], f"L{layer}.up", "rows")
            prev = add(mmc(4 * d, d), f"{tag}.down", [t], f"L{layer}.down", "rows")
    return TaskSet(f"transformer:{layers}", tasks, consts if inputs else {}, independent=False)


def gan(batches: int = 4, seed: int = 0, size: str = "full", inputs: bool = True) -> TaskSet:
    """DCGAN-shaped: z (N, C, 4, 4) -> 3 transposed convs (4x4, stride 2) to an image -> 3 strided convs."""
    N, ch = (2, (8, 6, 4, 3)) if size == "quick" else (64, (256, 128, 64, 3))
    dch = (3,) + tuple(reversed(ch[:-1]))  # discriminator 3 -> 64 -> 128 -> 256 (mirrors the generator)
    rng = np.random.default_rng(seed)
    ct, cv = get("conv_transpose2d"), get("conv2d")
    geo = dict(R=4, S=4, stride=2, padding=1)
    consts, tasks = {}, []
    for i in range(3):
        consts[f"G{i}"] = {"weight": _weights(rng, (ch[i], ch[i + 1], 4, 4), ch[i] * 16), "bias": None}
        consts[f"D{i}"] = {"weight": _weights(rng, (dch[i + 1], dch[i], 4, 4), dch[i] * 16), "bias": None}
    for b in range(batches):
        consts[f"z{b}"] = {"input": rng.standard_normal((N, ch[0], 4, 4), dtype=np.float32), **consts["G0"]}
        prev, hw = None, 4
        for i in range(3):
            case = ct.case(dict(N=N, C=ch[i], H=hw, W=hw, K=ch[i + 1], output_padding=0, **geo))
            deps, const, adapt = ([], f"z{b}", "own") if prev is None else ([prev], f"G{i}", "image")
            tasks.append(Task(len(tasks), case, f"b{b}.G{i}", tuple(deps), const, adapt, _nbytes(case)))
            prev, hw = len(tasks) - 1, hw * 2
        for i in range(3):
            case = cv.case(dict(N=N, C=dch[i], H=hw, W=hw, K=dch[i + 1], **geo))
            tasks.append(Task(len(tasks), case, f"b{b}.D{i}", (prev,), f"D{i}", "image", _nbytes(case)))
            prev, hw = len(tasks) - 1, hw // 2
    return TaskSet(f"gan:{batches}", tasks, consts if inputs else {}, independent=False)


SETS = {"mixed": (mixed, 40), "models": (models, 40), "transformer": (transformer, 4), "gan": (gan, 4)}


def make(spec: str, seed: int = 0, size: str = "full", inputs: bool = True) -> TaskSet:
    """'mixed:40', 'transformer:4' (layers), 'gan:4' (batches); the number is optional."""
    name, _, num = spec.partition(":")
    if name not in SETS:
        raise choices("task set", name, list(SETS))
    fn, default = SETS[name]
    if num and not (num.isdigit() and int(num) > 0):
        raise HeteroError(f"--tasks {spec!r}: the count after ':' must be a positive integer")
    return fn(int(num) if num else default, seed=seed, size=size, inputs=inputs)


def task_count(spec: str) -> int:
    """Tasks in a task set spec such as 'mixed:40' or 'gan:4' without building a big one: a set's task count is
    its count (tasks, layers or batches) times the tasks one unit makes."""
    name, _, num = spec.partition(":")
    if not num.isdigit() or int(num) < 1:  # the default count (small), or a bad one: make() says what is wrong
        return len(make(spec, inputs=False).tasks)
    return len(make(f"{name}:1", inputs=False).tasks) * int(num)


def reference_check(task: Task, inputs: dict, out) -> tuple[bool, float]:
    """(correct, max relative error) of one task's output against the float64 reference of its own inputs."""
    from hetero.workloads import check

    ok, _, rel = check(out, get(task.case.workload).reference(task.case, inputs), task.case.dtype)
    return ok, rel
