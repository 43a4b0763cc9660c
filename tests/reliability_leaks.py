"""Leak check: many bridged calls must not grow the process's resident memory.

    python tests/reliability_leaks.py --calls 100000 [--c-kernel libscale_kernels.so]

Warms up first (MXNet's engine pools its operation blocks, Python its small objects), then
measures resident memory (/proc/self/statm) around ``--calls`` calls over a fixed set of arrays
and views, waiting for the engine every 1,000 calls. Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mxnet as mx
import numpy as np

import bridge_cffi
from kernels_tvm import add_into, scaled_add
from reliability_kernels import axpy

PAGE = os.sysconf("SC_PAGE_SIZE")


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


def make_calls(
    c_kernel: str | None,
) -> tuple[list[Callable[[], object]], tuple[mx.nd.NDArray, mx.nd.NDArray]]:
    """The calls to repeat: three producers, whole arrays, views, shared variables, scalars."""
    add = bridge_cffi.to_mxnet_func(add_into(), const_loc=[0, 1])
    scaled = bridge_cffi.to_mxnet_func(scaled_add(), const_loc=[0, 1])
    inc = bridge_cffi.to_mxnet_func(axpy(), const_loc=[1])
    x = mx.nd.array(np.arange(64, dtype="float32"))
    y = mx.nd.zeros((64,))
    x_low, x_high = x[0:32], x[32:64]
    calls: list[Callable[[], object]] = [
        lambda: add(x, x, y),
        lambda: add(x_low, x_high, y[0:32]),   # views of one array, read
        lambda: add(y[0:32], y[0:32], y[0:32]),  # one variable read and written
        lambda: scaled(x, x, y, 0.5),
        lambda: inc(y, x, 0.0),
    ]
    if c_kernel:
        scale = bridge_cffi.to_mxnet_func(bridge_cffi.load_c_kernel(c_kernel), const_loc=[0])
        calls.append(lambda: scale(x_low, y[32:64], 1.0))
    return calls, (x, y)


def run(calls: list[Callable[[], object]], count: int) -> None:
    kinds = len(calls)
    for i in range(count):
        calls[i % kinds]()
        if i % 1000 == 999:
            mx.nd.waitall()
    mx.nd.waitall()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--warmup", type=int, default=20_000)
    parser.add_argument("--c-kernel", default=None)
    options = parser.parse_args(argv)
    calls, keep = make_calls(options.c_kernel)  # noqa: RUF059 - keep holds the arrays alive
    run(calls, options.warmup)
    assert bridge_cffi.wait_until_released()
    gc.collect()
    before_counters = bridge_cffi.read_counters()
    before = resident_bytes()
    started = time.monotonic()
    run(calls, options.calls)
    seconds = time.monotonic() - started
    released = bridge_cffi.wait_until_released()
    gc.collect()
    after = resident_bytes()
    counters = bridge_cffi.read_counters()
    print(json.dumps({
        "calls": counters["ops_pushed"] - before_counters["ops_pushed"],
        "rss_before": before,
        "rss_after": after,
        "rss_growth": after - before,
        "seconds": round(seconds, 2),
        "all_released": released,
        "dlpack_balanced": counters["dlpack_taken"] == counters["dlpack_deleted"],
        "kernels_alive": counters["kernels_alive"],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
