"""Scenarios run in a fresh interpreter per engine type (MXNET_ENGINE_TYPE is read at start).

``python tests/engine_scenarios.py`` prints one JSON object of results; the tests compare the
objects of the three engine types with each other and with numpy.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mxnet as mx
import numpy as np
import tvm_ffi
from mxnet.base import MXNetError

import bridge_cffi
from kernels_tvm import add_into, scaled_add


def _failing(a: tvm_ffi.Tensor, out: tvm_ffi.Tensor) -> None:  # noqa: ARG001 - a kernel's signature
    raise ValueError("kernel says no: bad input")


def main() -> None:
    results: dict[str, object] = {}
    scaled = bridge_cffi.to_mxnet_func(scaled_add(), const_loc=[0, 1])
    add = bridge_cffi.to_mxnet_func(add_into(), const_loc=[0, 1])
    x = mx.nd.array(np.arange(16, dtype="float32"))
    y = mx.nd.ones((16,))
    z = mx.nd.empty((16,))
    scaled(x, y, z, 10.0)
    results["seed"] = z.asnumpy().tolist()

    w = mx.nd.array(np.arange(30, dtype="float32"))
    add(w, w, w)
    add(w[0:10], w[10:20], w[20:30])
    results["aliasing"] = w.asnumpy().tolist()

    chain = mx.nd.ones((8,))
    for step in range(5):
        chain = chain * 2.0
        scaled(chain, chain, chain, float(step + 1))
    results["chain"] = chain.asnumpy().tolist()

    failing = bridge_cffi.to_mxnet_func(tvm_ffi.convert(_failing), const_loc=[0])
    target = mx.nd.zeros((4,))
    raised_at = None
    try:
        failing(x, target)
        raised_at = "none yet"
        target.wait_to_read()
    except MXNetError as error:
        raised_at = raised_at or "call"
        results["error_message"] = "kernel says no: bad input" in str(error)
    results["error_raised_at"] = "wait" if raised_at == "none yet" else raised_at
    add(target, target, target)  # later work on the same array runs normally
    results["after_error"] = target.asnumpy().tolist()
    mx.nd.waitall()
    results["all_released"] = bridge_cffi.wait_until_released()
    counters = bridge_cffi.read_counters()
    results["dlpack_balanced"] = counters["dlpack_taken"] == counters["dlpack_deleted"]
    results["ops_balanced"] = counters["ops_pushed"] == counters["ops_freed"]
    print(json.dumps(results))


if __name__ == "__main__":
    main()
