"""Kernels and operators the register_op tests share, each registered once per process."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import tvm
from tvm import te

import bridge_cffi

# y = sigmoid(a * x) over 2-D float32; the backward uses the saved output y.
SIGMOID_2D = """
@T.prim_func
def sigmoid_2d(x: T.handle, a: T.float32, y: T.handle):
    n = T.int64()
    m = T.int64()
    X = T.match_buffer(x, (n, m), "float32", offset_factor=1)
    Y = T.match_buffer(y, (n, m), "float32", offset_factor=1)
    for i, j in T.grid(n, m):
        Y[i, j] = T.sigmoid(a * X[i, j])
"""

SIGMOID_2D_BACKWARD = """
@T.prim_func
def sigmoid_2d_backward(x: T.handle, a: T.float32, y: T.handle, dy: T.handle, dx: T.handle):
    n = T.int64()
    m = T.int64()
    X = T.match_buffer(x, (n, m), "float32", offset_factor=1)
    Y = T.match_buffer(y, (n, m), "float32", offset_factor=1)
    DY = T.match_buffer(dy, (n, m), "float32", offset_factor=1)
    DX = T.match_buffer(dx, (n, m), "float32", offset_factor=1)
    for i, j in T.grid(n, m):
        DX[i, j] = DY[i, j] * a * Y[i, j] * (T.float32(1) - Y[i, j])
"""

# y = tanh(x) * w over float64 vectors: two differentiable inputs, no scalar.
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


def scaled_add_prim_func() -> Any:
    """The seed's z = (x + y) * scale as an un-built PrimFunc (x, y, z, scale)."""
    n = te.var("n")
    x, y = te.placeholder((n,), name="x"), te.placeholder((n,), name="y")
    scale = te.var("scale", dtype="float32")
    z = te.compute((n,), lambda i: (x[i] + y[i]) * scale, name="z")
    return te.create_prim_func([x, y, z, scale])


@lru_cache(maxsize=None)
def scaled_add_op() -> Any:
    """``test_scaled_add(x, y, scale=...)``: no gradient, shapes from the PrimFunc."""
    return bridge_cffi.register_op("test_scaled_add", scaled_add_prim_func())


@lru_cache(maxsize=None)
def sigmoid_op() -> Any:
    """``test_sigmoid(x, a=...)`` with a gradient that reads its saved output."""
    pair = bridge_cffi.differentiable(
        tvm.script.from_source(SIGMOID_2D),
        tvm.script.from_source(SIGMOID_2D_BACKWARD),
        save_outputs=True,
    )
    return bridge_cffi.register_op("test_sigmoid", pair)


@lru_cache(maxsize=None)
def tanh_scale_op() -> Any:
    """``test_tanh_scale(x, w)`` with gradients for both inputs."""
    pair = bridge_cffi.differentiable(
        tvm.script.from_source(TANH_SCALE), tvm.script.from_source(TANH_SCALE_BACKWARD)
    )
    return bridge_cffi.register_op("test_tanh_scale", pair)


@lru_cache(maxsize=None)
def compiled_scaled_add_op(name: str = "test_compiled_scaled_add", lie: bool = False) -> Any:
    """The seed's compiled module as an operator, shapes from a Python rule; ``lie`` makes the
    rule give the output a wrong length, so the kernel itself refuses the call."""
    module = tvm.build(scaled_add_prim_func(), target="llvm")

    def same_as_x(shapes: list[tuple[int, ...]], scale: float) -> list[tuple[int, ...]]:
        return [(shapes[0][0] + 1,)] if lie else [shapes[0]]

    return bridge_cffi.register_op(name, module, const_loc=[0, 1], infer_shape=same_as_x)
