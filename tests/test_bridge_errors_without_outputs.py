"""A failing kernel that writes no array reaches mx.nd.waitall(), under every engine type,
and poisons no other operation.
"""

from __future__ import annotations

import pytest

from conftest import run_python

SCRIPT = """
import mxnet as mx, tvm_ffi, bridge_cffi
ran = []
def failing(a):
    raise ValueError("no-write kernel failed")
def fine(a):
    ran.append(1)
fail = bridge_cffi.to_mxnet_func(tvm_ffi.convert(failing), const_loc=[0])
ok = bridge_cffi.to_mxnet_func(tvm_ffi.convert(fine), const_loc=[0])
x = mx.nd.ones(4)
where = "call"
try:
    fail(x)
    where = "waitall"
    ok(x)  # pushed after the failure, before the wait: it must still run
    mx.nd.waitall()
    where = "nowhere"
except mx.base.MXNetError as error:
    print("message:", "no-write kernel failed" in str(error))
print("raised at:", where)
mx.nd.waitall()
print("second waitall: clean")
ok(x)
mx.nd.waitall()
print("ran:", len(ran))
"""


@pytest.mark.parametrize(
    ("engine", "raised_at", "ran"),
    [
        ("ThreadedEnginePerDevice", "waitall", 2),
        ("ThreadedEngine", "waitall", 2),
        ("NaiveEngine", "call", 1),  # NaiveEngine runs the operation inside the call
    ],
)
def test_waitall_raises_the_error_of_an_operation_writing_no_array(
    engine: str, raised_at: str, ran: int
) -> None:
    done = run_python(SCRIPT, env={"MXNET_ENGINE_TYPE": engine}, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "message: True" in out, out
    assert f"raised at: {raised_at}" in out, out
    assert "second waitall: clean" in out and f"ran: {ran}" in out, out
