"""A pending operation keeps its arrays and its function alive; every deleter runs once."""

from __future__ import annotations

import gc

import mxnet as mx
import numpy as np

import bridge_cffi
from conftest import REPO, run_python
from kernels_tvm import scaled_add


def _slow(array: mx.nd.NDArray) -> mx.nd.NDArray:
    """A chain of native ops, so that work pushed after it is still pending for a while."""
    for _ in range(30):
        array = mx.nd.sqrt(array * array)
    return array


def test_inputs_wrapper_and_module_may_be_dropped_while_pending() -> None:
    import tvm
    from tvm import te

    n = te.var("n")
    a, b = te.placeholder((n,), name="a"), te.placeholder((n,), name="b")
    s = te.var("s", dtype="float32")
    module = tvm.build(
        te.create_prim_func([a, b, te.compute((n,), lambda i: (a[i] + b[i]) * s), s]),
        target="llvm")
    kernels_before = bridge_cffi.read_counters()["kernels_alive"]
    f = bridge_cffi.to_mxnet_func(module, const_loc=[0, 1])
    x = _slow(mx.nd.ones((1_000_000,)))
    y = mx.nd.ones((1_000_000,))
    z = mx.nd.empty((1_000_000,))
    f(x, y, z, 3.0)
    assert bridge_cffi.read_counters()["kernels_alive"] == kernels_before + 1
    del x, y, f, module
    gc.collect()
    np.testing.assert_array_equal(z.asnumpy()[:4], [6.0, 6.0, 6.0, 6.0])
    mx.nd.waitall()
    assert bridge_cffi.wait_until_released()
    assert bridge_cffi.read_counters()["kernels_alive"] == kernels_before


def test_every_dlpack_tensor_is_deleted_exactly_once() -> None:
    f = bridge_cffi.to_mxnet_func(scaled_add(), const_loc=[0, 1])
    mx.nd.waitall()
    before = bridge_cffi.read_counters()
    x = mx.nd.ones((16,))
    for _ in range(200):
        f(x, x[0:16], x, 1.0)  # three array arguments per call, all one variable
    mx.nd.waitall()
    assert bridge_cffi.wait_until_released()
    after = bridge_cffi.read_counters()
    assert after["dlpack_taken"] - before["dlpack_taken"] == 600
    assert after["dlpack_deleted"] - before["dlpack_deleted"] == 600
    assert after["ops_run"] - before["ops_run"] == 200
    assert after["ops_freed"] - before["ops_freed"] == 200


def test_interpreter_exits_cleanly_with_operations_pending() -> None:
    code = f"""
import sys
sys.path.insert(0, {str(REPO / 'tests')!r})
import mxnet as mx
import bridge_cffi
from kernels_tvm import scaled_add
f = bridge_cffi.to_mxnet_func(scaled_add(), const_loc=[0, 1])
x = mx.nd.ones((1_000_000,))
for _ in range(30):
    x = mx.nd.sqrt(x * x)
outs = [mx.nd.empty((1_000_000,)) for _ in range(20)]
for out in outs:
    f(x, x, out, 2.0)
print("pushed", bridge_cffi.read_counters()["ops_pushed"], flush=True)
"""
    done = run_python(code, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "pushed 20"
