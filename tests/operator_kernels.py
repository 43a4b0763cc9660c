"""Kernels and operators the register_op tests share, each registered once per process."""

from __future__ import annotations

import runpy
from functools import cache
from typing import Any

import tvm

import bridge_cffi
from conftest import REPO
from test_autograd_bridged import TANH_SCALE, TANH_SCALE_BACKWARD

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

#: The seed's z = (x + y) * scale as an un-built PrimFunc (x, y, z, scale).
scaled_add_prim_func = runpy.run_path(str(REPO / "examples" / "seed_example.py"))[
    "scaled_add_prim_func"
]


@cache
def scaled_add_op() -> Any:
    """``test_scaled_add(x, y, scale=...)``: no gradient, shapes from the PrimFunc."""
    return bridge_cffi.register_op("test_scaled_add", scaled_add_prim_func())


@cache
def sigmoid_op() -> Any:
    """``test_sigmoid(x, a=...)`` with a gradient that reads its saved output."""
    pair = bridge_cffi.differentiable(
        tvm.script.from_source(SIGMOID_2D),
        tvm.script.from_source(SIGMOID_2D_BACKWARD),
        save_outputs=True,
    )
    return bridge_cffi.register_op("test_sigmoid", pair)


@cache
def tanh_scale_op() -> Any:
    """``test_tanh_scale(x, w)`` with gradients for both inputs."""
    pair = bridge_cffi.differentiable(
        tvm.script.from_source(TANH_SCALE), tvm.script.from_source(TANH_SCALE_BACKWARD)
    )
    return bridge_cffi.register_op("test_tanh_scale", pair)


@cache
def compiled_scaled_add_op(name: str = "test_compiled_scaled_add", lie: bool = False) -> Any:
    """The seed's compiled module as an operator, shapes from a Python rule; ``lie`` makes the
    rule give the output a wrong length, so the kernel itself refuses the call.
    """
    module = tvm.build(scaled_add_prim_func(), target="llvm")

    def same_as_x(  # a shape rule's signature: the shapes, then the operator's attributes
        shapes: list[tuple[int, ...]], scale: float,  # noqa: ARG001
    ) -> list[tuple[int, ...]]:
        return [(shapes[0][0] + 1,)] if lie else [shapes[0]]

    return bridge_cffi.register_op(name, module, const_loc=[0, 1], infer_shape=same_as_x)
