"""Registered operators (bridge_cffi.register_op) against what users pick today.

Rows, all pipelined in one process: per call at n=20, ``(x + y) * scale`` by today's bridged
function with its output passed in, the same registered as an operator (the NDArray call, and
MXNet's own ``mx.nd.Custom`` route through the C custom-operator protocol), a Python
``mx.operator.CustomOp`` and the native two operations; and per forward, a hybridized two-layer
Gluon block whose middle operation is a bridged sigmoid against the same block with MXNet's
own sigmoid, at batch 1 and 256.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mxnet as mx
import numpy as np
import tvm
from mxnet import gluon

import bridge_cffi
from benchmarks.paths import load_example
from benchmarks.timing import interleaved_samples, per_call_us

SIGMOID = """
@T.prim_func
def bench_sigmoid(x: T.handle, y: T.handle):
    n = T.int64()
    m = T.int64()
    X = T.match_buffer(x, (n, m), "float32", offset_factor=1)
    Y = T.match_buffer(y, (n, m), "float32", offset_factor=1)
    for i, j in T.grid(n, m):
        Y[i, j] = T.sigmoid(X[i, j])
"""
#: Width of the benchmark block's layers.
UNITS = 256


class _PythonScaledAdd(mx.operator.CustomOp):  # type: ignore[misc]
    """What MXNet users write today: a Python custom operator doing (x + y) * 2."""

    def forward(  # MXNet's CustomOp signature
        self, is_train: bool, req: Any, in_data: Any, out_data: Any, aux: Any,  # noqa: ARG002
    ) -> None:
        self.assign(out_data[0], req[0], (in_data[0] + in_data[1]) * 2.0)

    def backward(self, *args: Any) -> None:
        raise NotImplementedError


@mx.operator.register("bench_python_scaled_add")
class _PythonScaledAddProp(mx.operator.CustomOpProp):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__(need_top_grad=False)

    def list_arguments(self) -> list[str]:
        return ["x", "y"]

    def infer_shape(self, in_shape: Any) -> Any:
        return in_shape, [in_shape[0]], []

    def create_operator(  # MXNet's CustomOpProp signature
        self, ctx: Any, shapes: Any, dtypes: Any,  # noqa: ARG002
    ) -> _PythonScaledAdd:
        return _PythonScaledAdd()


def per_call(module: tvm.runtime.Module, n: int, calls: int, rounds: int) -> dict[str, list[float]]:
    """Per-call samples (us) at length n for each route to the same (x + y) * 2."""
    op = bridge_cffi.register_op(
        "bench_scaled_add", load_example("seed_example")["scaled_add_prim_func"]()
    )
    bridged = bridge_cffi.to_mxnet_func(module, const_loc=[0, 1])
    x, y, z = mx.nd.ones(n), mx.nd.ones(n), mx.nd.empty(n)
    python_calls = max(calls // 50, 20)
    routes: dict[str, Callable[[], float]] = {
        "bridge_f_xyz": lambda: per_call_us(lambda: bridged(x, y, z, 2.0), calls),
        # What allocating the output costs on its own: today's call with a fresh z each time.
        "bridge_f_xy_fresh_z": lambda: per_call_us(
            lambda: bridged(x, y, mx.nd.empty(n), 2.0), calls
        ),
        "op_ndarray": lambda: per_call_us(lambda: op(x, y, scale=2.0), calls),
        "op_via_mxnet": lambda: per_call_us(
            lambda: op.via_mxnet(x, y, scale=2.0), calls
        ),
        "python_customop": lambda: per_call_us(
            lambda: mx.nd.Custom(x, y, op_type="bench_python_scaled_add"), python_calls
        ),
        "native_two_ops": lambda: per_call_us(lambda: (x + y) * 2.0, calls),
    }
    return interleaved_samples(routes, rounds)


class TwoLayers(gluon.HybridBlock):  # type: ignore[misc]
    """Dense, a middle sigmoid (bridged or MXNet's own), Dense."""

    def __init__(self, bridged: bool) -> None:
        super().__init__()
        self._bridged = bridged
        with self.name_scope():
            self.first = gluon.nn.Dense(UNITS, in_units=UNITS)
            self.second = gluon.nn.Dense(UNITS, in_units=UNITS)

    def hybrid_forward(self, F: Any, x: Any) -> Any:  # noqa: N803 - Gluon's name
        """Dense, the sigmoid, Dense."""
        h = self.first(x)
        h = F.bridge.bench_sigmoid(h) if self._bridged else F.sigmoid(h)
        return self.second(h)



def _block_route(block: Any, data: Any, calls: int) -> Callable[[], float]:
    """One round's measure of ``block(data)``: microseconds per call over ``calls`` calls."""
    return lambda: per_call_us(lambda: block(data), calls)


def hybridized_blocks(batches: tuple[int, ...], calls: int, rounds: int) -> dict[str, list[float]]:
    """Per-forward samples (us) of the hybridized block, bridged and native, per batch size."""
    bridge_cffi.register_op("bench_sigmoid", tvm.script.from_source(SIGMOID))
    routes: dict[str, Callable[[], float]] = {}
    for batch in batches:
        data = mx.nd.array(np.random.default_rng(0).random((batch, UNITS)), dtype="float32")
        blocks = {}
        for bridged in (False, True):
            block = TwoLayers(bridged)
            block.initialize(mx.init.Xavier())
            block.hybridize(static_alloc=True, static_shape=True)
            block(data).wait_to_read()
            blocks[bridged] = block
        # Same weights in both, so their outputs can be compared.
        for native_param, bridged_param in zip(
            blocks[False].collect_params().values(), blocks[True].collect_params().values(),
            strict=True,
        ):
            bridged_param.set_data(native_param.data())
        np.testing.assert_allclose(
            blocks[True](data).asnumpy(), blocks[False](data).asnumpy(), rtol=1e-5, atol=1e-6
        )
        for label, block in (("native", blocks[False]), ("bridged", blocks[True])):
            routes[f"batch{batch}_{label}"] = _block_route(block, data, calls)
    return interleaved_samples(routes, rounds)
