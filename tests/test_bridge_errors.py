"""Errors raised by a function while it runs on the engine reach Python as MXNetError."""

from __future__ import annotations

import json
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
import tvm_ffi
from mxnet.base import MXNetError

import bridge_cffi
from bridge_cffi.mxnet.interface import MxnetFunc
from conftest import REPO, run_python
from kernels_tvm import add_into


def _raising_function() -> MxnetFunc:
    def refuse(source: tvm_ffi.Tensor, target: tvm_ffi.Tensor) -> None:  # noqa: ARG001
        raise ValueError("refused by the kernel: shapes look wrong")

    return bridge_cffi.to_mxnet_func(tvm_ffi.convert(refuse), const_loc=[0], name="refuse")


@pytest.mark.parametrize("wait", ["asnumpy", "wait_to_read", "waitall"])
def test_function_error_surfaces_at_the_next_wait(wait: str) -> None:
    refuse = _raising_function()
    source, target = mx.nd.ones((3,)), mx.nd.zeros((3,))
    refuse(source, target)  # returns at once: the error happens on the engine thread
    # The wait under test is the parameter: each branch is one statement.
    with pytest.raises(MXNetError, match="refused by the kernel: shapes look wrong"):  # noqa: PT012
        if wait == "asnumpy":
            target.asnumpy()
        elif wait == "wait_to_read":
            target.wait_to_read()
        else:
            mx.nd.waitall()


def test_error_names_the_operation() -> None:
    refuse = _raising_function()
    target = mx.nd.zeros((3,))
    refuse(mx.nd.ones((3,)), target)
    with pytest.raises(MXNetError, match="bridge_cffi: refuse failed"):
        target.wait_to_read()


def test_later_work_on_the_same_arrays_runs_after_an_error() -> None:
    refuse = _raising_function()
    add = bridge_cffi.to_mxnet_func(add_into(), const_loc=[0, 1])
    source, target = mx.nd.ones((3,)), mx.nd.zeros((3,))
    refuse(source, target)
    with pytest.raises(MXNetError):
        target.wait_to_read()
    add(source, source, target)
    np.testing.assert_array_equal(target.asnumpy(), [2, 2, 2])


def test_tvm_argument_check_failure_arrives_as_mxnet_error(tmp_path: Path) -> None:
    from kernels_tvm import unchecked

    # Loaded back from its file, the module's signature is not known: TVM checks on the engine.
    add = bridge_cffi.to_mxnet_func(unchecked(add_into(), tmp_path), const_loc=[0, 1])
    assert "arguments checked by the kernel" in repr(add)
    out = mx.nd.zeros((4,))
    add(mx.nd.ones((4,)), mx.nd.ones((5,)), out)  # TVM's own shape check fails on the engine
    with pytest.raises(MXNetError, match="main"):
        out.asnumpy()


def test_c_kernel_error_code_arrives_with_its_message(c_kernel_library: Path) -> None:
    failing = bridge_cffi.to_mxnet_func(
        bridge_cffi.load_c_kernel(c_kernel_library, "failing_kernel_create"), const_loc=[0]
    )
    out = mx.nd.zeros((4,))
    failing(mx.nd.ones((4,)), out, 2.5)
    with pytest.raises(MXNetError, match=r"scale kernel refused: 2.5"):
        out.asnumpy()
    scale = bridge_cffi.to_mxnet_func(bridge_cffi.load_c_kernel(c_kernel_library), const_loc=[0])
    scale(mx.nd.ones((4,)), out, 3.0)
    np.testing.assert_array_equal(out.asnumpy(), [3, 3, 3, 3])


RECORDED_SCENARIO = f"""
import json, sys
sys.path.insert(0, {str(REPO / 'tests')!r})
import mxnet as mx, tvm_ffi
import bridge_cffi
from kernels_tvm import add_into
def refuse(a, b):
    raise ValueError("recorded refusal")
refuse = bridge_cffi.to_mxnet_func(tvm_ffi.convert(refuse), const_loc=[0])
add = bridge_cffi.to_mxnet_func(add_into(), const_loc=[0, 1])
x, y = mx.nd.ones((2,)), mx.nd.zeros((2,))
out = {{"mode": bridge_cffi.mxnet.readiness.ensure_ready().error_mode}}
refuse(x, y)
y.wait_to_read()
try:
    add(x, x, y)
    out["next_call"] = "no error"
except mx.base.MXNetError as error:
    out["next_call"] = str(error)
add(x, x, y)
out["after"] = y.asnumpy().tolist()
refuse(x, y)
try:
    bridge_cffi.synchronize()
    out["synchronize"] = "no error"
except mx.base.MXNetError as error:
    out["synchronize"] = str(error)
print(json.dumps(out))
"""


def test_recorded_error_mode_raises_at_the_next_call_and_at_synchronize() -> None:
    done = run_python(RECORDED_SCENARIO, env={"BRIDGE_CFFI_ERROR_MODE": "recorded"})
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["mode"] == "recorded"
    assert "recorded refusal" in out["next_call"] and "not pushed" in out["next_call"]
    assert out["after"] == [2.0, 2.0]
    assert "recorded refusal" in out["synchronize"]


def test_error_propagates_through_a_bridged_op_reading_the_failed_output() -> None:
    # Like a native op, a bridged op depending on a failed one is skipped by MXNet's engine and
    # carries the error on to what it writes. (MXNet clears a propagated error for every array
    # sharing it at the first wait that raises it, so only one wait is checked.)
    refuse = _raising_function()
    add = bridge_cffi.to_mxnet_func(add_into(), const_loc=[0, 1])
    source, failed, downstream = mx.nd.ones((3,)), mx.nd.zeros((3,)), mx.nd.zeros((3,))
    refuse(source, failed)
    add(failed, failed, downstream)
    with pytest.raises(MXNetError, match="refused by the kernel: shapes look wrong"):
        downstream.wait_to_read()


def test_a_late_error_names_what_each_position_was_called_with(tmp_path: Path) -> None:
    from kernels_tvm import scaled_add, unchecked

    f = bridge_cffi.to_mxnet_func(unchecked(scaled_add(), tmp_path), const_loc=[0, 1])
    out = mx.nd.zeros((20,))
    f(mx.nd.ones((20,), dtype="float64"), mx.nd.ones((20,)), out, 2.5)
    with pytest.raises(MXNetError) as raised:
        out.wait_to_read()
    message = str(raised.value)
    assert "x.dtype" in message  # TVM's own words, naming its parameter
    assert "(called with #0 float64 (20,), #1 float32 (20,), #2 float32 (20,), #3 float 2.5)" in (
        message
    )
