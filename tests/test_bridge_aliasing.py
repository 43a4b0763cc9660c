"""Arrays sharing one engine variable are pushed once (written wins); nothing hangs.

MXNet 1.9.1 deadlocks when one variable is both read and written by an operation, and views
of one array share its variable even when their bytes do not overlap (DESIGN §3). Each test
runs its calls under a watchdog, so a regression fails instead of hanging the suite:

- the in-process tests under pytest-timeout's "thread" method: a missed deduplication leaves the
  test blocked in MXNet's C wait (asnumpy), where a SIGALRM handler ("signal" method) would
  never run; the thread method prints every stack and ends the run (tests/test_watchdog.py
  shows it doing so on a real engine wait);
- every scenario again in a fresh interpreter per engine under run_python's timeout, where a
  hang fails that one test and the rest of the suite still runs.
"""

from __future__ import annotations

import json

import mxnet as mx
import numpy as np
import pytest

import bridge_cffi
from conftest import run_python
from kernels_tvm import add_into, scaled_add

#: Each of these tests takes a second or two; 60 s is far beyond any honest run of one.
pytestmark = pytest.mark.timeout(60, method="thread")


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


ENGINES = ("ThreadedEnginePerDevice", "ThreadedEngine", "NaiveEngine")


# The subprocess's own timeout is the watchdog here (a hang fails this test alone); the mark
# only lifts the module's 60 s so that it does not fire first.
@pytest.mark.timeout(120, method="thread")
@pytest.mark.parametrize("engine", ENGINES)
def test_aliasing_under_every_engine_never_hangs(engine: str) -> None:
    code = """
import json, mxnet as mx, numpy as np, sys
sys.path.insert(0, "tests")
import bridge_cffi
from kernels_tvm import add_into, scaled_add
f = bridge_cffi.to_mxnet_func(add_into(), const_loc=[0, 1])
x = mx.nd.array(np.arange(30, dtype="float32"))
f(x, x, x)
f(x[0:10], x[10:20], x[20:30])
f(x[0:5], x[0:5], x[0:5])
base = mx.nd.array(np.arange(8, dtype="float32").reshape(2, 4))
flat = base.reshape((8,))
f(flat, flat, base.reshape((8,)))
g = bridge_cffi.to_mxnet_func(scaled_add(), const_loc=[0, 1])
y, z = mx.nd.array(np.arange(5, dtype="float32")), mx.nd.zeros((5,))
g(y, y, z, 1.0)
print(json.dumps([x.asnumpy().tolist(), base.asnumpy().ravel().tolist(), z.asnumpy().tolist()]))
"""
    x = np.arange(30, dtype="float32") * 2
    x[20:30] = x[0:10] + x[10:20]
    x[0:5] *= 2
    expected = [x.tolist(), (np.arange(8) * 2.0).tolist(), (np.arange(5) * 2.0).tolist()]
    done = run_python(code, env={"MXNET_ENGINE_TYPE": engine}, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == expected
