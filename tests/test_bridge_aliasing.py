"""Arrays sharing one engine variable are pushed once (written wins); nothing hangs.

MXNet 1.9.1 deadlocks when one variable is both read and written by an operation, and views
of one array share its variable even when their bytes do not overlap (DESIGN §3). Each test
runs its calls under a watchdog, so a regression fails instead of hanging the suite.
"""

from __future__ import annotations

import mxnet as mx
import numpy as np

import bridge_cffi
from conftest import run_python
from kernels_tvm import add_into, scaled_add


def test_one_array_passed_as_read_and_written_is_pushed_once() -> None:
    f = bridge_cffi.to_mxnet_func(add_into(), const_loc=[0, 1])  # a, b read; out written
    x = mx.nd.array(np.arange(6, dtype="float32"))
    f(x, x, x)  # x is read twice and written: one write dependency
    np.testing.assert_array_equal(x.asnumpy(), np.arange(6) * 2)


def test_same_array_read_twice_is_one_read_dependency() -> None:
    f = bridge_cffi.to_mxnet_func(scaled_add(), const_loc=[0, 1])
    x = mx.nd.array(np.arange(5, dtype="float32"))
    z = mx.nd.zeros((5,))
    f(x, x, z, 1.0)
    np.testing.assert_array_equal(z.asnumpy(), np.arange(5) * 2)


def test_disjoint_views_of_one_array_read_and_written() -> None:
    f = bridge_cffi.to_mxnet_func(add_into(), const_loc=[0, 1])
    x = mx.nd.array(np.arange(30, dtype="float32"))
    f(x[0:10], x[10:20], x[20:30])  # bytes disjoint, one engine variable
    expected = np.arange(30, dtype="float32")
    expected[20:30] = expected[0:10] + expected[10:20]
    np.testing.assert_array_equal(x.asnumpy(), expected)


def test_overlapping_views_in_place() -> None:
    f = bridge_cffi.to_mxnet_func(add_into(), const_loc=[0, 1])
    x = mx.nd.array(np.arange(10, dtype="float32"))
    f(x[0:5], x[0:5], x[0:5])  # identical bytes, read and written in place
    expected = np.arange(10, dtype="float32")
    expected[0:5] *= 2
    np.testing.assert_array_equal(x.asnumpy(), expected)


def test_reshaped_view_and_base_are_one_variable() -> None:
    f = bridge_cffi.to_mxnet_func(add_into(), const_loc=[0, 1])
    base = mx.nd.array(np.arange(8, dtype="float32").reshape(2, 4))
    flat = base.reshape((8,))
    f(flat, flat, base.reshape((8,)))
    np.testing.assert_array_equal(base.asnumpy().ravel(), np.arange(8) * 2)


def test_aliasing_under_every_engine_never_hangs() -> None:
    code = """
import mxnet as mx, numpy as np, sys
sys.path.insert(0, "tests")
import bridge_cffi
from kernels_tvm import add_into
f = bridge_cffi.to_mxnet_func(add_into(), const_loc=[0, 1])
x = mx.nd.array(np.arange(30, dtype="float32"))
f(x, x, x)
f(x[0:10], x[10:20], x[20:30])
f(x[0:5], x[0:5], x[0:5])
print(x.asnumpy().tolist())
"""
    x = np.arange(30, dtype="float32") * 2
    x[20:30] = x[0:10] + x[10:20]
    x[0:5] *= 2
    for engine in ("ThreadedEnginePerDevice", "ThreadedEngine", "NaiveEngine"):
        done = run_python(code, env={"MXNET_ENGINE_TYPE": engine}, timeout=60)
        assert done.returncode == 0, done.stderr
        assert eval(done.stdout.strip().splitlines()[-1]) == x.tolist(), engine
