"""hetero.run and hetero.list_backends: the Python API, with PyTorch-style argument names."""

import numpy as np
import pytest

import hetero
from hetero.errors import HeteroError


def test_list_backends_reports_every_builtin_with_a_reason_when_unavailable():
    rows = {name: (ok, reason) for name, ok, reason in hetero.list_backends()}
    assert rows["numpy"] == (True, "") and "null" not in rows
    assert all(ok or reason for ok, reason in rows.values())


def test_run_matmul_attention_conv_on_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((5, 3)), rng.standard_normal((3, 4))
    np.testing.assert_allclose(hetero.run("matmul", a=a, b=b), a @ b, rtol=1e-5, atol=1e-6)
    q = rng.standard_normal((1, 2, 6, 4)).astype(np.float32)
    out = hetero.run("attention", backend="numpy", query=q, key=q, value=q, is_causal=True)
    assert out.shape == q.shape and np.allclose(out[:, :, 0], q[:, :, 0], atol=1e-6)  # row 0 sees only key 0
    x, w, bias = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3)), np.arange(3.0)
    y = hetero.run("conv2d", input=x, weight=w, bias=bias, stride=2, padding=(1, 1))
    assert y.shape == (1, 3, 3, 3)


def test_explicit_scale_is_used():
    q = np.random.default_rng(1).standard_normal((1, 1, 5, 8)).astype(np.float32)
    default = hetero.run("attention", query=q, key=q, value=q)
    flat = hetero.run("attention", query=q, key=q, value=q, scale=0.0)  # uniform weights: mean of values
    assert not np.allclose(default, flat)
    np.testing.assert_allclose(flat[0, 0], np.broadcast_to(q[0, 0].mean(0), (5, 8)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: hetero.run("gemm", a=1), "unknown workload 'gemm'"),
        (lambda: hetero.run("matmul", backend="cuda", a=np.ones((2, 2)), b=np.ones((2, 2))), "unknown backend 'cuda'"),
        (
            lambda: hetero.run("matmul", a=np.ones((2, 3)), b=np.ones((2, 3))),
            r"input \(2, 3\) and other \(2, 3\) cannot",
        ),
        (lambda: hetero.run("matmul", a=np.ones(()), b=np.ones((3, 2))), "at least 1 dimension"),
        (lambda: hetero.run("matmul", a=np.ones((2, 2))), "needs input and other"),
        (lambda: hetero.run("matmul", x=1, a=1, b=1), "unknown argument 'x'"),
        (
            lambda: hetero.run(
                "attention", query=np.ones((1, 1, 4, 8)), key=np.ones((1, 1, 4, 8)), value=np.ones((1, 1, 5, 8))
            ),
            "value length 5",
        ),
        (lambda: hetero.run("conv2d", input=np.ones((1, 3, 5, 5)), weight=np.ones((2, 4, 3, 3))), "has 3 channels"),
        (
            lambda: hetero.run("conv2d", input=np.ones((1, 3, 5, 5)), weight=np.ones((2, 3, 3, 3)), bias=np.ones(3)),
            r"bias has shape \(3,\)",
        ),
        (
            lambda: hetero.run("conv2d", input=np.ones((1, 3, 5, 5)), weight=np.ones((2, 3, 3, 3)), stride=(1, 2, 3)),
            r"integer or an \(h, w\) pair",
        ),
        (lambda: hetero.run("matmul", a=np.array(["x"]).reshape(1, 1), b=np.ones((1, 1))), "must be floating point"),
    ],
)
def test_bad_arguments_raise_one_line_errors(call, match):
    with pytest.raises(HeteroError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


def test_unavailable_backend_says_why(monkeypatch):
    from hetero.backends import registry
    from hetero.backends.null import NullBackend

    monkeypatch.setattr(NullBackend, "_unavailable", classmethod(lambda cls: "no null device plugged in"))
    with pytest.raises(hetero.BackendUnavailable, match="backend 'null' unavailable: no null device"):
        registry.get("null").prepare(
            hetero.WORKLOADS["matmul"].case(dict(M=1, N=1, K=1)),
            {"a": np.ones((1, 1), np.float32), "b": np.ones((1, 1), np.float32)},
        )
