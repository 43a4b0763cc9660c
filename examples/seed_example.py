"""The seed example: a TVM-compiled ``(x + y) * scale`` run as an asynchronous MXNet operation.

Builds the function with TVM's tensor expressions, wraps it with ``const_loc=[0, 1]`` (x and y
are read, z is written), runs it on MXNet arrays without waiting, and checks against numpy.
"""

from __future__ import annotations

import time

import mxnet as mx
import numpy as np
import tvm
from tvm import te

import bridge_cffi


def scaled_add_prim_func() -> tvm.tir.PrimFunc:
    """z = (x + y) * scale for float32 vectors of any length, un-built: args (x, y, z, scale)."""
    n = te.var("n")
    x = te.placeholder((n,), name="x", dtype="float32")
    y = te.placeholder((n,), name="y", dtype="float32")
    scale = te.var("scale", dtype="float32")
    z = te.compute((n,), lambda i: (x[i] + y[i]) * scale, name="z")
    return te.create_prim_func([x, y, z, scale])


def build_scaled_add() -> tvm.runtime.Module:
    """Compile z = (x + y) * scale for float32 vectors of any length, for the CPU."""
    return tvm.build(scaled_add_prim_func(), target="llvm")


def main() -> int:
    """Run the example; return 0 when MXNet's result matches numpy's."""
    module = build_scaled_add()
    scaled_add = bridge_cffi.to_mxnet_func(module, const_loc=[0, 1], name="scaled_add")

    shape = (1000,)
    xx = mx.nd.array(np.random.uniform(size=shape).astype("float32"))
    yy = mx.nd.array(np.random.uniform(size=shape).astype("float32"))
    zz = mx.nd.empty(shape)

    started = time.perf_counter()
    returned = scaled_add(xx, yy, zz, 10.0)
    pushed = time.perf_counter()
    result = zz.asnumpy()  # waits for the engine, like any MXNet output
    done = time.perf_counter()

    expected = (xx.asnumpy() + yy.asnumpy()) * 10.0
    matches = np.allclose(result, expected, rtol=1e-6)
    readiness = bridge_cffi.mxnet.readiness.ensure_ready()
    print("bridge_cffi seed example")
    print(f"  MXNet {mx.__version__}, TVM {tvm.__version__}")
    print(f"  wrapped: {scaled_add!r}")
    print(f"  call returned {returned!r} after {(pushed - started) * 1e6:.1f} us (pushed, not run)")
    print(f"  zz.asnumpy() waited {(done - pushed) * 1e6:.1f} us for the engine")
    print(f"  engine errors reach Python via: {readiness.error_mode}")
    print(f"  zz[:4] = {result[:4]}")
    print(f"  matches numpy (x + y) * 10: {matches}")
    return 0 if matches else 1


if __name__ == "__main__":
    raise SystemExit(main())
