"""Lifetime under pressure: everything a call names may be dropped while it is pending, the
interpreter may exit with operations pending, and every DLPack deleter runs exactly once.

The counters are the C side's (bridge_cffi.read_counters()): ``dlpack_taken`` counts the DLPack
tensors the engine callback took, ``dlpack_deleted`` the deleters it called; MXNet frees a
completed operation just after waking waiters, hence wait_until_released().
"""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mxnet as mx
import numpy as np
import pytest
import tvm_ffi

import bridge_cffi
from conftest import REPO, run_python

ENGINES = ["ThreadedEnginePerDevice", "ThreadedEngine", "NaiveEngine"]


def _slow_ones(n: int) -> mx.nd.NDArray:
    """All ones, behind a chain of native work: what is pushed after it stays pending a while."""
    array = mx.nd.ones((n,))
    for _ in range(30):
        array = mx.nd.sqrt(array * array)
    return array


def _vector(tensor: tvm_ffi.Tensor) -> np.typing.NDArray[np.float32]:
    buffer = (ctypes.c_float * tensor.shape[0]).from_address(tensor.data_ptr())
    return np.ctypeslib.as_array(buffer)


def _fresh_module() -> Any:  # a tvm runtime Module
    """A module built here, so this test holds its only Python reference."""
    import tvm
    from tvm import te

    n = te.var("n")
    a, b = te.placeholder((n,), name="a"), te.placeholder((n,), name="b")
    out = te.compute((n,), lambda i: a[i] + b[i], name="out")
    return tvm.build(te.create_prim_func([a, b, out]), target="llvm")


def test_inputs_outputs_wrappers_and_modules_dropped_while_pending(c_kernel_library: Path) -> None:
    mx.nd.waitall()
    assert bridge_cffi.wait_until_released()
    before = bridge_cffi.read_counters()
    n, calls = 200_000, 40
    slow = _slow_ones(n)
    keep = mx.nd.zeros((n,))  # the one output kept, to check a value at the end

    def triple(source: tvm_ffi.Tensor, target: tvm_ffi.Tensor) -> None:
        _vector(target)[...] = _vector(source) * 3

    module = _fresh_module()
    wrappers: list[tuple[Any, int, Callable[[Any, Any], list[Any]]]] = [
        (bridge_cffi.to_mxnet_func(module, const_loc=[0, 1]), 3, lambda x, y: [x, x, y]),
        (bridge_cffi.to_mxnet_func(bridge_cffi.load_c_kernel(c_kernel_library), const_loc=[0]),
         2, lambda x, y: [x, y, 2.0]),
        (bridge_cffi.to_mxnet_func(tvm_ffi.convert(triple), const_loc=[0]), 2,
         lambda x, y: [x, y]),
    ]
    tensor_args = 0
    for call in range(calls):
        wrapper, arrays, arguments = wrappers[call % 3]
        source = slow + 0  # a new input, pending behind the slow chain
        target = keep if call == calls - 1 else mx.nd.empty((n,))
        view_source = source[0:n] if call % 2 else source  # views as well as whole arrays
        wrapper(*arguments(view_source, target))
        tensor_args += arrays
        del source, target, view_source  # inputs and outputs dropped at once
    pending_at_drop = bridge_cffi.read_counters()["ops_run"] - before["ops_run"] < calls
    del wrappers, module, slow, wrapper, arguments  # the wrappers and the module too
    gc.collect()
    assert pending_at_drop, "the calls had already run: the test did not exercise pending work"
    expected = {0: 2.0, 1: 2.0, 2: 3.0}[(calls - 1) % 3]  # x + x, x * 2.0, x * 3
    np.testing.assert_array_equal(keep.asnumpy()[:5], np.full(5, expected, dtype="float32"))
    mx.nd.waitall()
    assert bridge_cffi.wait_until_released()
    after = bridge_cffi.read_counters()
    assert after["ops_pushed"] - before["ops_pushed"] == calls
    assert after["ops_run"] - before["ops_run"] == calls
    assert after["ops_freed"] - before["ops_freed"] == calls
    # Every DLPack tensor taken was deleted exactly once: one per array argument of each call.
    assert after["dlpack_taken"] - before["dlpack_taken"] == tensor_args
    assert after["dlpack_deleted"] - before["dlpack_deleted"] == tensor_args
    assert after["kernels_alive"] == before["kernels_alive"]


def test_failed_operations_delete_their_dlpack_tensors_once(c_kernel_library: Path) -> None:
    failing = bridge_cffi.to_mxnet_func(
        bridge_cffi.load_c_kernel(c_kernel_library, "failing_kernel_create"), const_loc=[0])
    mx.nd.waitall()
    assert bridge_cffi.wait_until_released()
    before = bridge_cffi.read_counters()
    source = mx.nd.ones((8,))
    for _ in range(25):
        target = mx.nd.zeros((8,))
        failing(source, target, 1.0)
        with pytest.raises(mx.base.MXNetError, match="scale kernel refused"):
            target.wait_to_read()
    assert bridge_cffi.wait_until_released()
    after = bridge_cffi.read_counters()
    assert after["dlpack_taken"] - before["dlpack_taken"] == 50
    assert after["dlpack_deleted"] - before["dlpack_deleted"] == 50
    assert after["ops_freed"] - before["ops_freed"] == 25


EXIT_SCENARIO = f"""
import ctypes, sys
sys.path.insert(0, {str(REPO / 'tests')!r})
import mxnet as mx, numpy as np, tvm_ffi
import bridge_cffi
from kernels_tvm import add_into

def vector(t):
    return np.ctypeslib.as_array((ctypes.c_float * t.shape[0]).from_address(t.data_ptr()))

def triple(s, d):
    vector(d)[...] = vector(s) * 3

def refuse(s, d):
    raise ValueError("refused while the interpreter exits")

add = bridge_cffi.to_mxnet_func(add_into(), const_loc=[0, 1])
python_kernel = bridge_cffi.to_mxnet_func(tvm_ffi.convert(triple), const_loc=[0])
c_kernel = bridge_cffi.to_mxnet_func(bridge_cffi.load_c_kernel(sys.argv[1]), const_loc=[0])
failing = bridge_cffi.to_mxnet_func(tvm_ffi.convert(refuse), const_loc=[0])
x = mx.nd.ones((500_000,))
for _ in range(30):
    x = mx.nd.sqrt(x * x)
for i in range(40):
    out = mx.nd.empty((500_000,))
    add(x, x[0:500_000], out)
    python_kernel(x, out)
    c_kernel(out, out, 0.5)
    if i % 10 == 9 and sys.argv[2] == "with_errors":
        try:
            failing(x, mx.nd.empty((4,)))
        except mx.base.MXNetError:
            pass  # NaiveEngine runs the operation inside the call, which raises
counters = bridge_cffi.read_counters()
print("pending", counters["ops_pushed"] - counters["ops_run"], flush=True)
"""


@pytest.mark.parametrize("errors", ["no_errors", "with_errors"])
@pytest.mark.parametrize("engine", ENGINES)
def test_interpreter_exits_with_operations_pending(engine: str, errors: str,
                                                   c_kernel_library: Path) -> None:
    code = EXIT_SCENARIO.replace("sys.argv[1]", repr(str(c_kernel_library))).replace(
        "sys.argv[2]", repr(errors))
    done = run_python(code, env={"MXNET_ENGINE_TYPE": engine}, timeout=60)  # a hang fails here
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Segfault" not in done.stderr and "Aborted" not in done.stderr
    assert done.stdout.startswith("pending ")
    if engine != "NaiveEngine":
        assert int(done.stdout.split()[1]) > 0, "nothing was pending at exit"


C_KERNEL_DROPPED = """
import gc, sys
import mxnet as mx
import bridge_cffi
scale = bridge_cffi.to_mxnet_func(bridge_cffi.load_c_kernel(sys.argv[1]), const_loc=[0])
x = mx.nd.ones((2_000_000,))
for _ in range(30):
    x = mx.nd.sqrt(x * x)
out = mx.nd.zeros((2_000_000,))
scale(x, out, 2.0)
pending = bridge_cffi.read_counters()["ops_run"] == 0
del scale  # the Kernel, its cffi library object and the wrapper: the library must stay mapped
gc.collect()
print(pending, out.asnumpy()[:3].tolist())
"""


def test_c_kernel_dropped_while_pending_keeps_its_code_loaded(c_kernel_library: Path) -> None:
    # Regression: load_c_kernel's library was dlclosed when the wrapper was collected, and the
    # pending operation then called an unmapped invoke() on the engine thread (SIGSEGV).
    code = C_KERNEL_DROPPED.replace("sys.argv[1]", repr(str(c_kernel_library)))
    done = run_python(code, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split("\n")[0] == "True [2.0, 2.0, 2.0]"
