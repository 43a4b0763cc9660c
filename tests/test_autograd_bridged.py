"""Autograd: a forward and a backward bridged function recorded as one differentiable operation."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache
from typing import Any

import mxnet as mx
import numpy as np
import pytest
import tvm
from tvm import te

import bridge_cffi
from bridge_cffi.mxnet.autograd import DifferentiableFunction, differentiable
from conftest import REPO, run_python

TANH_SCALE = """
@T.prim_func
def tanh_scale(x: T.handle, w: T.handle, y: T.handle):
    n = T.int64()
    X = T.match_buffer(x, (n,), "float64", offset_factor=1)
    W = T.match_buffer(w, (n,), "float64", offset_factor=1)
    Y = T.match_buffer(y, (n,), "float64", offset_factor=1)
    for i in range(n):
        Y[i] = T.tanh(X[i]) * W[i]
"""

TANH_SCALE_BACKWARD = """
@T.prim_func
def tanh_scale_backward(x: T.handle, w: T.handle, dy: T.handle, dx: T.handle, dw: T.handle):
    n = T.int64()
    X = T.match_buffer(x, (n,), "float64", offset_factor=1)
    W = T.match_buffer(w, (n,), "float64", offset_factor=1)
    DY = T.match_buffer(dy, (n,), "float64", offset_factor=1)
    DX = T.match_buffer(dx, (n,), "float64", offset_factor=1)
    DW = T.match_buffer(dw, (n,), "float64", offset_factor=1)
    for i in range(n):
        DX[i] = DY[i] * W[i] * (T.float64(1) - T.tanh(X[i]) * T.tanh(X[i]))
        DW[i] = DY[i] * T.tanh(X[i])
"""

# y = sigmoid(a * x) with a scalar a; the backward uses the saved output y.
SIGMOID = """
@T.prim_func
def scaled_sigmoid(x: T.handle, a: T.float32, y: T.handle):
    n = T.int64()
    X = T.match_buffer(x, (n,), "float32", offset_factor=1)
    Y = T.match_buffer(y, (n,), "float32", offset_factor=1)
    for i in range(n):
        Y[i] = T.sigmoid(a * X[i])
"""

SIGMOID_BACKWARD = """
@T.prim_func
def scaled_sigmoid_backward(x: T.handle, a: T.float32, y: T.handle, dy: T.handle, dx: T.handle):
    n = T.int64()
    X = T.match_buffer(x, (n,), "float32", offset_factor=1)
    Y = T.match_buffer(y, (n,), "float32", offset_factor=1)
    DY = T.match_buffer(dy, (n,), "float32", offset_factor=1)
    DX = T.match_buffer(dx, (n,), "float32", offset_factor=1)
    for i in range(n):
        DX[i] = DY[i] * a * Y[i] * (T.float32(1) - Y[i])
"""


@cache
def tanh_scale() -> DifferentiableFunction:
    return differentiable(tvm.script.from_source(TANH_SCALE),
                          tvm.script.from_source(TANH_SCALE_BACKWARD))


@cache
def scaled_sigmoid() -> DifferentiableFunction:
    return differentiable(tvm.script.from_source(SIGMOID), tvm.script.from_source(SIGMOID_BACKWARD),
                          save_outputs=True)


@cache
def dense(dtype: str) -> DifferentiableFunction:
    """y = x @ w.T + b (what mx.nd.FullyConnected computes), forward and backward in TE."""
    batch, units, hidden = te.var("batch"), te.var("units"), te.var("hidden")
    x = te.placeholder((batch, units), dtype, "x")
    w = te.placeholder((hidden, units), dtype, "w")
    b = te.placeholder((hidden,), dtype, "b")
    k = te.reduce_axis((0, units), "k")
    xw = te.compute((batch, hidden), lambda i, j: te.sum(x[i, k] * w[j, k], axis=k), "xw")
    y = te.compute((batch, hidden), lambda i, j: xw[i, j] + b[j], "y")
    forward = te.create_prim_func([x, w, b, y]).with_attr("global_symbol", "dense")

    dy = te.placeholder((batch, hidden), dtype, "dy")
    kh, kb, kb2 = te.reduce_axis((0, hidden), "kh"), te.reduce_axis((0, batch), "kb"), \
        te.reduce_axis((0, batch), "kb2")
    dx = te.compute((batch, units), lambda i, u: te.sum(dy[i, kh] * w[kh, u], axis=kh), "dx")
    dw = te.compute((hidden, units), lambda j, u: te.sum(dy[kb, j] * x[kb, u], axis=kb), "dw")
    db = te.compute((hidden,), lambda j: te.sum(dy[kb2, j], axis=kb2), "db")
    backward = te.create_prim_func([x, w, b, dy, dx, dw, db]).with_attr(
        "global_symbol", "dense_backward")
    return differentiable(forward, backward)


def numeric_gradient(
    f: Callable[..., Any],
    arrays: list[np.typing.NDArray[np.float64]],
    weights: np.typing.NDArray[np.float64],
    eps: float = 1e-6,
) -> list[np.typing.NDArray[np.float64]]:
    """Central differences of sum(f(*arrays) * weights) with respect to every array."""
    grads = []
    for index, array in enumerate(arrays):
        grad = np.zeros_like(array)
        for flat in range(array.size):
            values = []
            for sign in (1.0, -1.0):
                moved = [a.copy() for a in arrays]
                moved[index].reshape(-1)[flat] += sign * eps
                values.append(float((f(*moved) * weights).sum()))
            grad.reshape(-1)[flat] = (values[0] - values[1]) / (2 * eps)
        grads.append(grad)
    return grads


def autograd_gradient(
    op: DifferentiableFunction, arrays: list[np.typing.NDArray[np.float64]],
    weights: np.typing.NDArray[np.float64],
) -> list[np.typing.NDArray[np.float64]]:
    inputs = [mx.nd.array(a, dtype=a.dtype) for a in arrays]
    for array in inputs:
        array.attach_grad()
    with mx.autograd.record():
        loss = (op(*inputs) * mx.nd.array(weights, dtype=weights.dtype)).sum()
    loss.backward()
    return [array.grad.asnumpy() for array in inputs]


def test_elementwise_gradients_match_finite_differences() -> None:
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal(6), rng.standard_normal(6)
    weights = rng.standard_normal(6)
    op = tanh_scale()

    def forward(*arrays: np.typing.NDArray[np.float64]) -> np.typing.NDArray[np.float64]:
        result: np.typing.NDArray[np.float64] = op(
            *[mx.nd.array(a, dtype="float64") for a in arrays]).asnumpy()
        return result

    for got, want in zip(autograd_gradient(op, [x, w], weights),
                         numeric_gradient(forward, [x, w], weights), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


def test_dense_gradients_match_finite_differences() -> None:
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal((3, 4)), rng.standard_normal((2, 4)), rng.standard_normal(2)]
    weights = rng.standard_normal((3, 2))
    op = dense("float64")

    def forward(*values: np.typing.NDArray[np.float64]) -> np.typing.NDArray[np.float64]:
        result: np.typing.NDArray[np.float64] = op(
            *[mx.nd.array(a, dtype="float64") for a in values]).asnumpy()
        return result

    for got, want in zip(autograd_gradient(op, arrays, weights),
                         numeric_gradient(forward, arrays, weights), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


def test_dense_matches_mxnet_fully_connected_forward_and_backward() -> None:
    rng = np.random.default_rng(3)
    x, w, b = (rng.standard_normal(s).astype("float32") for s in ((8, 5), (3, 5), (3,)))
    head = mx.nd.array(rng.standard_normal((8, 3)).astype("float32"))
    results = []
    for use_bridge in (True, False):
        inputs = [mx.nd.array(a) for a in (x, w, b)]
        for array in inputs:
            array.attach_grad()
        with mx.autograd.record():
            scaled = inputs[0] * 2.0  # a native op before, and after: gradients chain through
            y = (dense("float32")(scaled, inputs[1], inputs[2]) if use_bridge else
                 mx.nd.FullyConnected(scaled, inputs[1], inputs[2], num_hidden=3))
            loss = (mx.nd.relu(y) * head).sum()
        loss.backward()
        results.append([y.asnumpy()] + [a.grad.asnumpy() for a in inputs])
    for ours, native in zip(*results, strict=True):
        np.testing.assert_allclose(ours, native, rtol=1e-5, atol=1e-5)


def test_elementwise_matches_mxnet_tanh_times_w() -> None:
    x = mx.nd.array(np.linspace(-2, 2, 9), dtype="float64")
    w = mx.nd.array(np.linspace(3, -1, 9), dtype="float64")
    grads = []
    for use_bridge in (True, False):
        xs, ws = x.copy(), w.copy()
        xs.attach_grad()
        ws.attach_grad()
        with mx.autograd.record():
            y = tanh_scale()(xs, ws) if use_bridge else mx.nd.tanh(xs) * ws
            (y * y).sum().backward()
        grads.append((xs.grad.asnumpy(), ws.grad.asnumpy()))
    for ours, native in zip(*grads, strict=True):
        np.testing.assert_allclose(ours, native, rtol=1e-12, atol=1e-12)


def test_saved_outputs_and_scalars_reach_the_backward() -> None:
    x = mx.nd.array(np.linspace(-3, 3, 11).astype("float32"))
    grads = []
    for use_bridge in (True, False):
        xs = x.copy()
        xs.attach_grad()
        with mx.autograd.record():
            y = scaled_sigmoid()(xs, 1.5) if use_bridge else mx.nd.sigmoid(1.5 * xs)
        y.backward(mx.nd.arange(11))
        grads.append(xs.grad.asnumpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-5, atol=1e-6)


def test_backward_runs_through_the_bridge() -> None:
    x, w = mx.nd.ones(4, dtype="float64"), mx.nd.ones(4, dtype="float64")
    x.attach_grad()
    w.attach_grad()
    with mx.autograd.record():
        y = tanh_scale()(x, w)
    mx.nd.waitall()
    before = bridge_cffi.read_counters()["ops_run"]
    y.backward()
    mx.nd.waitall()
    assert bridge_cffi.read_counters()["ops_run"] - before == 1


def test_grad_req_add_accumulates_and_null_is_skipped() -> None:
    x = mx.nd.array(np.linspace(-1, 1, 5), dtype="float64")
    w = mx.nd.array(np.linspace(1, 2, 5), dtype="float64")
    x.attach_grad(grad_req="null")  # listed first: MXNet's own Function would stop here
    w.attach_grad(grad_req="add")
    for _ in range(3):
        with mx.autograd.record():
            y = tanh_scale()(x, w)
        y.backward()
    np.testing.assert_allclose(w.grad.asnumpy(), 3 * np.tanh(np.linspace(-1, 1, 5)), rtol=1e-12)


def test_outside_record_the_forward_only_returns_its_outputs() -> None:
    y = tanh_scale()(mx.nd.zeros(3, dtype="float64"), mx.nd.ones(3, dtype="float64"))
    np.testing.assert_allclose(y.asnumpy(), [0.0, 0.0, 0.0])


def test_a_backward_with_the_wrong_arguments_is_refused_at_construction() -> None:
    with pytest.raises(bridge_cffi.BridgeValueError,
                       match=r"backward: takes 3 non-output argument\(s\), expected 4: forward's 2 "
                             r"argument\(s\), its 1 output\(s\), then 1 output gradient"):
        differentiable(tvm.script.from_source(TANH_SCALE),
                       tvm.script.from_source(TANH_SCALE_BACKWARD), save_outputs=True)


def test_a_forward_updating_a_buffer_in_place_is_refused() -> None:
    source = """
@T.prim_func
def bump(x: T.handle, y: T.handle):
    n = T.int64()
    X = T.match_buffer(x, (n,), "float32", offset_factor=1)
    Y = T.match_buffer(y, (n,), "float32", offset_factor=1)
    for i in range(n):
        Y[i] = X[i]
        X[i] = X[i] + T.float32(1)
"""
    with pytest.raises(bridge_cffi.BridgeValueError, match=r"argument 0 \(X\) is updated in place"):
        differentiable(tvm.script.from_source(source), tvm.script.from_source(SIGMOID_BACKWARD))


ENGINE_SCRIPT = r"""
import mxnet as mx, numpy as np, tvm
import test_autograd_bridged as t
x = mx.nd.array(np.linspace(-1, 1, 6), dtype="float64")
w = mx.nd.array(np.linspace(2, 3, 6), dtype="float64")
x.attach_grad()
w.attach_grad()
for _ in range(3):
    with mx.autograd.record():
        loss = (t.tanh_scale()(x * 1.0, w) ** 2).sum()
    loss.backward()
tx = np.tanh(np.linspace(-1, 1, 6))
y = tx * np.linspace(2, 3, 6)
np.testing.assert_allclose(x.grad.asnumpy(), 2 * y * np.linspace(2, 3, 6) * (1 - tx ** 2),
                           rtol=1e-12)
np.testing.assert_allclose(w.grad.asnumpy(), 2 * y * tx, rtol=1e-12)
print("ok")
"""


@pytest.mark.parametrize("engine", ["NaiveEngine", "ThreadedEngine", "ThreadedEnginePerDevice"])
def test_forward_and_backward_run_under_every_engine(engine: str) -> None:
    path = os.pathsep.join(filter(None, [str(REPO / "tests"), os.environ.get("PYTHONPATH")]))
    done = run_python(ENGINE_SCRIPT, env={"MXNET_ENGINE_TYPE": engine, "PYTHONPATH": path})
    assert done.returncode == 0 and "ok" in done.stdout, done.stdout + done.stderr
