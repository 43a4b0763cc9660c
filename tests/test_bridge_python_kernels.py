"""Plain Python functions as kernels: named after themselves, and their waits for MXNet arrays
on the engine thread refused with the reason instead of deadlocking the engine.
"""

from __future__ import annotations

from typing import Any

import mxnet as mx
import numpy as np
import pytest

import bridge_cffi
from conftest import run_python

RAN: list[tuple[int, ...]] = []


def record_shapes(source: Any, target: Any) -> None:
    """A Python kernel: notes the shapes it was called with (tvm-ffi tensors)."""
    RAN.append(tuple(source.shape) + tuple(target.shape))


def test_a_python_function_runs_and_is_named_after_itself() -> None:
    f = bridge_cffi.to_mxnet_func(record_shapes, const_loc=[0])
    assert f.name == "record_shapes"
    RAN.clear()
    y = mx.nd.zeros((6,))
    f(mx.nd.array(np.arange(6, dtype="float32")), y)
    y.wait_to_read()
    assert RAN == [(6, 6)]


DEADLOCK = """
import mxnet as mx, bridge_cffi
def waits_on_its_own_output(source, target):
    out.asnumpy()  # without the guard: waits for this very operation, forever
f = bridge_cffi.to_mxnet_func(waits_on_its_own_output, const_loc=[0])
x, out = mx.nd.ones(4), mx.nd.zeros(4)
try:
    f(x, out)
    out.wait_to_read()
    print("no error")
except mx.base.MXNetError as error:
    print("refused:", "would wait for work queued behind this very kernel" in str(error),
          "NDArray.asnumpy" in str(error))
print("engine alive:", mx.nd.ones(2).asnumpy().tolist())
"""


@pytest.mark.parametrize("engine", ["ThreadedEnginePerDevice", "ThreadedEngine", "NaiveEngine"])
def test_a_python_kernel_waiting_for_mxnet_is_refused_not_hung(engine: str) -> None:
    # The timeout is the watchdog: a deadlock fails the test instead of hanging the suite.
    done = run_python(DEADLOCK, env={"MXNET_ENGINE_TYPE": engine}, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "refused: True True" in done.stdout, done.stdout + done.stderr[-2000:]
    assert "engine alive: [1.0, 1.0]" in done.stdout
