"""MXNet's own MXTVMBridge, tried with this TVM in a process of its own.

Only for a TVM of the PackedFunc generation, the one MXTVMBridge was written for: the seed's
``tvm.contrib.mxnet.to_mxnet_func`` on a vector add, checked against numpy. The trial runs in
a separate interpreter because the measured outcome with third-party builds is a crash
(hhb-tvm 3.2.3 with pip MXNet 1.9.1: SIGSEGV, TVM's callback got num_args=-11344); the
crash is reported as a fact, never suffered by the probe.
"""

from __future__ import annotations

import platform
import re
import signal
import subprocess
import sys

TIMEOUT_S = 120.0

_MXNET_SIGNAL_LINE = re.compile(r"Segmentation fault: (\d+)")

_SCRIPT = """
import mxnet as mx, numpy as np, tvm
from tvm import te
from tvm.contrib.mxnet import to_mxnet_func
n = 20
x = te.placeholder((n,), name="x"); y = te.placeholder((n,), name="y")
z = te.compute((n,), lambda i: x[i] + y[i], name="z")
module = tvm.build(te.create_schedule(z.op), [x, y, z], {target!r}, name="vadd")
bridged = to_mxnet_func(module, const_loc=[0, 1])
xx, yy, zz = mx.nd.array(np.arange(n, dtype="float32")), mx.nd.ones(n), mx.nd.zeros(n)
bridged(xx, yy, zz)
print("RESULT", bool(np.allclose(zz.asnumpy(), np.arange(n) + 1)), flush=True)
"""


def _target() -> str:
    # Some third-party builds default "llvm" to another machine (hhb-tvm: riscv64).
    return f"llvm -mtriple={platform.machine()}-linux-gnu"


def run_trial(timeout_s: float = TIMEOUT_S) -> str:
    """What MXTVMBridge does with this MXNet and TVM: ``right answers``, ``wrong answers``,
    ``crashes (signal N, NAME)``, ``timed out`` or ``fails: <the last line of the error>``.
    """
    try:
        done = subprocess.run(
            [sys.executable, "-c", _SCRIPT.format(target=_target())],
            capture_output=True, text=True, timeout=timeout_s, check=False,
        )
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout_s:g} s"
    # MXNet's own signal handler catches the crash, prints "Segmentation fault: 11" and exits
    # with a status of its own; without it the child dies of the signal.
    caught = _MXNET_SIGNAL_LINE.search(done.stderr)
    number = int(caught.group(1)) if caught else -done.returncode if done.returncode < 0 else 0
    if number:
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = "unknown"
        return f"crashes (signal {number}, {name})"
    if "RESULT True" in done.stdout:
        return "right answers"
    if "RESULT False" in done.stdout:
        return "wrong answers"
    last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
    return f"fails: {last[:300]}"
