"""The flash kernel's own register tiles (kernels/attention/numba_tiles.py): the two microkernels against NumPy on
ragged row counts, causal trimming and value head sizes of one and several panels; the packed operands; and the
whole numba attention on the tiles (small blocks, so that every query block folds several key blocks) against the
float64 reference, NaN and inf included. Where the tiles do not apply (no AVX2, or a value head size that is not a
multiple of 8) the sgemm path runs and is checked the same way."""

import re

import numpy as np
import pytest

from hetero.workloads import check, get
from hetero.workloads.attention import scale_of

pytestmark = pytest.mark.usefixtures("needs_numba")

CASES = {
    "causal-self": dict(B=1, H=2, S=83, D=64, causal=1),
    "full-self": dict(B=2, H=1, S=70, D=24),
    "cross-causal-longer-query": dict(B=1, H=2, S=37, D=16, L=75, causal=1),
    "cross-causal-shorter-query": dict(B=1, H=2, S=90, D=8, L=20, causal=1),
    "gqa-float-mask": dict(B=2, H=4, Hkv=2, S=61, D=16, L=40, mask=2),
    "bool-mask-value-dim": dict(B=2, H=2, S=50, D=12, Dv=24, L=33, mask=1),
    "value-dim-not-whole-vectors": dict(B=1, H=2, S=40, D=16, Dv=12, L=30, causal=1),
}
SPOTS = [[], [("query", 3, np.nan)], [("key", 9, np.inf)], [("value", 5, np.nan)], [("key", 0, -np.inf)]]


def _attend(params, spots, monkeypatch):
    from hetero.kernels.attention import numba_attention

    monkeypatch.setattr(numba_attention, "BQ", 32)  # blocks stay whole numbers of 16-key panels
    monkeypatch.setattr(numba_attention, "BK", 48)
    wl = get("attention")
    case = wl.case(params)
    inputs = wl.make_inputs(case, 0)
    for name, index, value in spots:
        inputs[name] = inputs[name].copy()
        inputs[name].reshape(-1)[index % inputs[name].size] = value
    with np.errstate(invalid="ignore", over="ignore"):
        ref = wl.reference(case, inputs)
    out = np.full(ref.shape, -7.0, np.float32)
    q, k, v, mask = (inputs[n] for n in ("query", "key", "value", "attn_mask"))
    numba_attention.attention(q, k, v, out, scale_of(case, None), bool(case.p["causal"]), mask)
    return check(out, ref, case.dtype)


@pytest.mark.parametrize("spots", SPOTS, ids=lambda s: s[0][0] + "-" + str(s[0][2]) if s else "finite")
@pytest.mark.parametrize("name", sorted(CASES))
def test_attention_on_tiles_matches_reference(name, spots, monkeypatch):
    ok, abs_err, rel_err = _attend(CASES[name], spots, monkeypatch)
    assert ok, f"{name} {spots}: abs {abs_err:.3g}, rel {rel_err:.3g}"


@pytest.mark.parametrize("mr, r0, vis0", [(1, 0, 64), (6, 0, 64), (13, 5, 64), (20, 3, 1), (7, 0, 30)])
@pytest.mark.parametrize("Dv", [8, 16, 40])
def test_microkernels_match_numpy(mr, r0, vis0, Dv):
    """scores and values on mr rows from r0 (tiles past mr write slack rows, which are not compared), where row i
    sees the first vis0 + i of 64 keys: every score a row sees, and the value rows it sees, are exact to float32
    sums; panels no row of a tile sees are left alone."""
    from hetero.kernels.attention import numba_tiles as T

    rng = np.random.default_rng(mr + Dv)
    S, D, n, j0 = 96, 24, 64, 16
    rows = r0 + -(-mr // T.MR) * T.MR
    q = rng.standard_normal((rows, D), dtype=np.float32)
    k, v = rng.standard_normal((1, 1, S, D), dtype=np.float32), rng.standard_normal((1, 1, S, Dv), dtype=np.float32)
    s = np.full(rows * n, np.nan, np.float32)
    T.scores(q, r0, mr, T.pack_keys(k)[0, 0], j0 // T.PANEL, n // T.PANEL, s, vis0)
    want = q[r0 : r0 + mr] @ k[0, 0, j0 : j0 + n].T
    got = s.reshape(rows, n)[:mr]
    for i in range(mr):
        seen = min(n, vis0 + i)
        np.testing.assert_allclose(got[i, :seen], want[i, :seen], rtol=1e-5, atol=1e-5)
    p = rng.random((rows, n), dtype=np.float32)
    for i in range(mr):
        p[i, min(n, vis0 + i) :] = 0  # what softmax leaves past a row's last key
    acc = rng.standard_normal((rows + r0, Dv), dtype=np.float32)
    alpha = rng.random(rows, dtype=np.float32)
    want = acc[r0 : r0 + mr] * alpha[:mr, None] + p[:mr] @ v[0, 0, j0 : j0 + n]
    vp, _ = T.pack_values(v)
    T.values(p.reshape(-1), n, mr, vp[0, 0], j0, n, acc, r0, alpha, vis0)
    np.testing.assert_allclose(acc[r0 : r0 + mr], want, rtol=1e-5, atol=1e-5)


def test_packed_values_and_their_poison():
    """pack_values: 16-column strips, zeros past Dv; poison NaN exactly in the columns holding a NaN or inf."""
    from hetero.kernels.attention import numba_tiles as T

    v = np.arange(2 * 3 * 5 * 20, dtype=np.float32).reshape(2, 3, 5, 20)
    v[1, 2, 4, 17], v[0, 1, 0, 3] = np.inf, np.nan
    vp, poison = T.pack_values(v)
    assert vp.shape == (2, 3, 2, 5, 16)
    assert np.array_equal(vp[:, :, 0], v[..., :16], equal_nan=True)
    assert np.array_equal(vp[:, :, 1, :, :4], v[..., 16:]) and not vp[:, :, 1, :, 4:].any()
    assert np.argwhere(np.isnan(poison)).tolist() == [[0, 1, 3], [1, 2, 17]] and not np.nansum(np.abs(poison))
    kp = T.pack_keys(v)
    assert kp.shape == (2, 3, 1, 20, 16) and np.array_equal(kp[..., :5], v.transpose(0, 1, 3, 2)[:, :, None], True)
    assert not kp[..., 5:].any()


def test_tile_is_fmas_on_registers():
    """On a CPU the tiles apply to, a reduction step is 2 loads, 6 broadcasts and 12 FMAs on ymm registers, and no
    accumulator is spilled to the stack (module docstring)."""
    from hetero.kernels import numba_fma_tile as T

    if not T.applies():
        pytest.skip("this CPU is not one the tile runs on (AVX2 and FMA without AVX-512)")
    asm = T.tile_asm()
    assert len(re.findall(r"\bvfmadd231ps\s+%ymm", asm)) >= 2 * T.MR
    assert len(re.findall(r"\bvbroadcastss\b", asm)) >= T.MR
    fmas = [m.start() for m in re.finditer(r"\bvfmadd231ps\b", asm)]
    loop = asm[fmas[0] : fmas[-1]]
    assert not re.search(r"%ymm\d+, -?\d*\(%rsp\)|\(%rsp\), %ymm", loop), "an accumulator spilled to the stack"


def test_flash_kernel_takes_the_tiles_where_they_apply():
    """Key/value panels (the tiles' operands) are made exactly where numba_tiles.applies; the sgemm path otherwise."""
    from hetero.kernels.attention import numba_attention, numba_tiles

    k = np.ones((1, 2, 20, 8), np.float32)
    for Dv in (8, 12, 16):
        kp, vp, poison, _ = numba_attention._key_value_operands(k, np.ones((1, 2, 20, Dv), np.float32))
        assert (kp.shape[2] > 0) == numba_tiles.applies(Dv) == (vp.shape[2] > 0) and poison.shape == (1, 2, Dv)
