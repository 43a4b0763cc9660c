"""Misaligned views through a default-buffer TVM kernel, one fresh interpreter per engine type.

``python tests/staging_scenarios.py`` prints one JSON object: for each case, whether MXNet's
result matched numpy's; the tests run it under every MXNET_ENGINE_TYPE.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mxnet as mx
import numpy as np

import bridge_cffi
from kernels_tvm import add_into_default


def main() -> None:
    """Run every view kind once and report numpy agreement per case."""
    add = bridge_cffi.to_mxnet_func(add_into_default("float32"), const_loc=[0, 1])
    results: dict[str, bool] = {}
    base = np.arange(200, dtype="float32")
    x = mx.nd.array(base)
    # Slices at every element offset of a 64-byte line, into a separate output.
    ok = True
    for start in range(1, 16):
        out = mx.nd.zeros((20,))
        add(x[start : start + 20], x[start + 40 : start + 60], out)
        expected = base[start : start + 20] + base[start + 40 : start + 60]
        ok &= bool(np.array_equal(out.asnumpy(), expected))
    results["slices"] = ok
    # int8 views at every byte offset of a 64-byte line.
    add8 = bridge_cffi.to_mxnet_func(add_into_default("int8"), const_loc=[0, 1])
    small = (np.arange(256) % 50).astype("int8")
    x8 = mx.nd.array(small, dtype="int8")
    ok = True
    for start in range(1, 64):
        out = mx.nd.zeros((24,), dtype="int8")
        add8(x8[start : start + 24], x8[start + 100 : start + 124], out)
        expected = small[start : start + 24] + small[start + 100 : start + 124]
        ok &= bool(np.array_equal(out.asnumpy(), expected))
    results["int8_every_byte_offset"] = ok
    # Rows and slabs of a 2-D array, and an output view.
    grid = np.arange(100, dtype="float32").reshape(5, 20)
    a = mx.nd.array(grid)
    out = mx.nd.zeros((5, 20))
    add(a[3], a[1], out[2])
    expected = np.zeros((5, 20), dtype="float32")
    expected[2] = grid[3] + grid[1]
    results["rows_and_output_row"] = bool(np.array_equal(out.asnumpy(), expected))
    # One array as several disjoint views: read two, write a third (one engine variable).
    w = mx.nd.array(base.copy())
    add(w[1:21], w[41:61], w[101:121])
    want = base.copy()
    want[101:121] = base[1:21] + base[41:61]
    results["one_array_several_views"] = bool(np.array_equal(w.asnumpy(), want))
    # A reshaped (column-contiguous) view: reshape then slice rows of it.
    r = mx.nd.array(base[:120].copy()).reshape((12, 10))
    out = mx.nd.zeros((30,))
    add(r[1:4].reshape((30,)), r[5:8].reshape((30,)), out)
    results["reshaped_views"] = bool(
        np.array_equal(out.asnumpy(), base[10:40] + base[50:80])
    )
    # The engine goes on: chains of staged calls need no waits in between.
    chain = mx.nd.array(base.copy())
    for _ in range(5):
        add(chain[3:23], chain[3:23], chain[3:23])
    want = base.copy()
    want[3:23] *= 32
    results["chain_in_place"] = bool(np.array_equal(chain.asnumpy(), want))
    mx.nd.waitall()
    results["all_released"] = bridge_cffi.wait_until_released()
    counters = bridge_cffi.read_counters()
    results["staged_some"] = counters["views_staged"] > 0
    print(json.dumps(results))


if __name__ == "__main__":
    main()
