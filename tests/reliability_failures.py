r"""Failure injection: functions that raise (a Python callable through tvm_ffi.convert) or return
an error code (a C protocol kernel), interleaved with good operations on the same arrays.

    MXNET_ENGINE_TYPE=NaiveEngine \
        python tests/reliability_failures.py --c-kernel lib.so [--rounds 30]

Prints one JSON object of observations as its last line; the test compares them per engine.
Under BRIDGE_CFFI_ERROR_MODE=recorded the "sync" is bridge_cffi.synchronize().
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mxnet as mx
import numpy as np
import tvm_ffi
from mxnet.base import MXNetError

import bridge_cffi
from kernels_tvm import add_into

RECORDED = os.environ.get("BRIDGE_CFFI_ERROR_MODE") == "recorded"


def _raise_value_error(source: tvm_ffi.Tensor, target: tvm_ffi.Tensor) -> None:  # noqa: ARG001
    raise ValueError("injected failure from a Python kernel")


def push_and_sync(push: Callable[[], object], target: mx.nd.NDArray) -> tuple[str, str]:
    """Push, then wait on ``target``; say where the error surfaced and with what message."""
    try:
        push()
    except MXNetError as error:
        return "call", str(error)
    try:
        if RECORDED:
            target.wait_to_read()
            bridge_cffi.synchronize()
        else:
            target.wait_to_read()
    except MXNetError as error:
        return "sync", str(error)
    return "none", ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--c-kernel", required=True)
    parser.add_argument("--rounds", type=int, default=30)
    options = parser.parse_args(argv)
    raising = bridge_cffi.to_mxnet_func(tvm_ffi.convert(_raise_value_error), const_loc=[0],
                                        name="raising_python")
    failing_c = bridge_cffi.to_mxnet_func(
        bridge_cffi.load_c_kernel(options.c_kernel, "failing_kernel_create"), const_loc=[0])
    scale_c = bridge_cffi.to_mxnet_func(bridge_cffi.load_c_kernel(options.c_kernel),
                                        const_loc=[0])
    add = bridge_cffi.to_mxnet_func(add_into(), const_loc=[0, 1])
    source_np = np.arange(16, dtype="float32")
    source = mx.nd.array(source_np)
    target = mx.nd.zeros((16,))
    out: dict[str, object] = {"mode": bridge_cffi.mxnet.readiness.ensure_ready().error_mode}
    where, seen, values_ok, messages_ok = [], [], True, True
    mx.nd.waitall()
    before = bridge_cffi.read_counters()
    for round_index in range(options.rounds):
        scale = float(round_index % 7 + 1)
        if round_index % 2:
            failed_at, message = push_and_sync(lambda: raising(source, target), target)
            expected = "injected failure from a Python kernel"
            named = "raising_python failed"
        else:
            failed_at, message = push_and_sync(  # called at once, in this iteration
                lambda: failing_c(source, target, scale), target)  # noqa: B023
            expected = f"scale kernel refused: {scale:g}"
            named = "c_failing_scale failed"
        where.append(failed_at)
        messages_ok = messages_ok and expected in message and named in message
        if expected not in message:
            seen.append(message[:300])
        # A later operation on the same arrays runs normally, through both producers.
        scale_c(source, target, scale)
        values_ok = values_ok and np.array_equal(target.asnumpy(), source_np * scale)
        add(source, target, target)
        values_ok = values_ok and np.array_equal(target.asnumpy(), source_np * (scale + 1))
    try:
        bridge_cffi.synchronize()
        out["clean_at_end"] = True
    except MXNetError as error:  # an error nobody collected
        out["clean_at_end"] = str(error)[:300]
    out["where"] = sorted(set(where))
    out["failures"] = len(where)
    out["messages_ok"] = messages_ok
    out["unexpected_messages"] = seen[:3]
    out["values_ok"] = values_ok
    out["source_intact"] = bool(np.array_equal(source.asnumpy(), source_np))
    mx.nd.waitall()
    out["all_released"] = bridge_cffi.wait_until_released()
    after = bridge_cffi.read_counters()
    out["ops_run"] = after["ops_run"] - before["ops_run"]
    out["dlpack_balanced"] = (after["dlpack_taken"] - before["dlpack_taken"]
                              == after["dlpack_deleted"] - before["dlpack_deleted"])
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
