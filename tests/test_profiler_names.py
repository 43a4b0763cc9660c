"""MXNet's profiler shows bridged operations under the names given to ``to_mxnet_func``."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_python

# Runs in its own interpreter: the profiler is process-wide state.
PROFILE_SCRIPT = r"""
import sys
import mxnet as mx
import tvm
from tvm import te
import bridge_cffi
from bridge_cffi.mxnet.autograd import differentiable

n = te.var("n")
x, y = te.placeholder((n,), name="x"), te.placeholder((n,), name="y")
z = te.compute((n,), lambda i: x[i] + y[i], name="z")
add = bridge_cffi.to_mxnet_func(te.create_prim_func([x, y, z]), name="bridged_profiled_add")

dz = te.placeholder((n,), name="dz")
dx = te.compute((n,), lambda i: dz[i], name="dx")
dy = te.compute((n,), lambda i: dz[i], name="dy")
op = differentiable(te.create_prim_func([x, y, z]),
                    te.create_prim_func([x, y, dz, dx, dy]), name="bridged_profiled_sum")

mx.profiler.set_config(profile_all=True, filename=sys.argv[1])
mx.profiler.set_state("run")
a = mx.nd.ones(1000)
for _ in range(3):
    a = add(a, a)
a.attach_grad()
with mx.autograd.record():
    s = op(a, a * 2)
s.backward()
mx.nd.waitall()
mx.profiler.set_state("stop")
mx.profiler.dump()
"""


def operator_begins(trace: Path) -> dict[str, int]:
    """How many operations of each name began. Operations pushed while MXNet runs a custom
    function's backward are filed under "Custom Operator" as "::name"; count them by name.
    """
    counts: dict[str, int] = {}
    for event in json.loads(trace.read_text())["traceEvents"]:
        if event.get("cat") in ("operator", "Custom Operator") and event.get("ph") == "B":
            name = event["name"].rpartition("::")[2]
            counts[name] = counts.get(name, 0) + 1
    return counts


def test_bridged_operations_appear_under_their_names_in_a_dumped_profile(tmp_path: Path) -> None:
    trace = tmp_path / "profile.json"
    done = run_python(PROFILE_SCRIPT.replace("sys.argv[1]", repr(str(trace))))
    assert done.returncode == 0, done.stderr
    counts = operator_begins(trace)
    assert counts.get("bridged_profiled_add", 0) >= 3, counts
    assert counts.get("bridged_profiled_sum", 0) >= 1, counts
    assert counts.get("bridged_profiled_sum_backward", 0) >= 1, counts
    assert counts.get("_mul_scalar", 0) >= 1, counts  # native ops are in the same trace
