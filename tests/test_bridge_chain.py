"""Bridged and native MXNet operations mixed with no explicit waits keep their order."""

from __future__ import annotations

import mxnet as mx
import numpy as np

import bridge_cffi
from kernels_tvm import add_into, scaled_add


def test_chain_of_native_and_bridged_ops_matches_numpy() -> None:
    scaled = bridge_cffi.to_mxnet_func(scaled_add(), const_loc=[0, 1])
    add = bridge_cffi.to_mxnet_func(add_into(), const_loc=[0, 1])
    rng = np.random.default_rng(0)
    a_np = rng.uniform(size=1000).astype("float32")
    b_np = rng.uniform(size=1000).astype("float32")
    a, b = mx.nd.array(a_np), mx.nd.array(b_np)
    c = mx.nd.empty((1000,))
    for step in range(20):
        a = a * 1.5 + 0.25              # native, returns a fresh lazily allocated array
        scaled(a, b, c, float(step))   # bridged, reads a still being computed
        b = mx.nd.sqrt(c + 1.0)        # native, reads c the bridge writes
        add(b, a, c)                   # bridged, writes c read by the op above
        a_np = a_np * 1.5 + 0.25
        c_np = (a_np + b_np) * step
        b_np = np.sqrt(c_np + 1.0)
        c_np = b_np + a_np
    np.testing.assert_allclose(c.asnumpy(), c_np, rtol=1e-4)
    np.testing.assert_allclose(b.asnumpy(), b_np, rtol=1e-4)


def test_output_of_a_native_op_is_written_by_the_bridge_before_it_is_read() -> None:
    add = bridge_cffi.to_mxnet_func(add_into(), const_loc=[0, 1])
    x = mx.nd.ones((100_000,))
    out = x * 0.0  # pending native op; its output is allocated on the engine thread
    add(x, x, out)
    total = (out * 3).sum()  # native read after the bridged write
    assert total.asscalar() == 600_000
