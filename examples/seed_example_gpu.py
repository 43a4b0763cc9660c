"""The seed example on the GPU: ``(x + y) * scale`` built by ``tvm.build`` for CUDA, run on
``mx.gpu(0)`` as an asynchronous MXNet operation on the engine's CUDA stream.

Needs a CUDA build of MXNet and a GPU (and nvcc for TVM's CUDA codegen). The inputs are made
on the host and copied: pip's mxnet-cu117 has no kernels for sm_90, so on an H100/H200 MXNet's
own GPU operators (``mx.nd.zeros(ctx=gpu)``, ``x + y``) fail, while its copies and engine work.
"""

from __future__ import annotations

import os
import time

import mxnet as mx
import numpy as np
import tvm
from tvm import te

import bridge_cffi

#: The GPU's architecture for TVM's CUDA target (sm_90: H100, H200).
ARCH = os.environ.get("BRIDGE_CFFI_CUDA_ARCH", "sm_90")


def build_scaled_add_cuda(dtype: str = "float32", arch: str = ARCH) -> tvm.runtime.Module:
    """Compile zz = (x + y) * scale for 1-D ``dtype`` vectors of any length, for CUDA."""
    from tvm.s_tir import Schedule

    n = te.var("n")
    x = te.placeholder((n,), name="x", dtype=dtype)
    y = te.placeholder((n,), name="y", dtype=dtype)
    scale = te.var("scale", dtype="float32")
    z = te.compute((n,), lambda i: x[i] + y[i], name="z")
    zz = te.compute((n,), lambda i: z[i] * scale.astype(dtype), name="zz")
    schedule = Schedule(tvm.IRModule({"main": te.create_prim_func([x, y, zz, scale])}))
    schedule.compute_inline(schedule.get_sblock("z"))
    (loop,) = schedule.get_loops(schedule.get_sblock("zz"))
    blocks, threads = schedule.split(loop, [None, 128])
    schedule.bind(blocks, "blockIdx.x")
    schedule.bind(threads, "threadIdx.x")
    target = tvm.target.Target({"kind": "cuda", "arch": arch}, host="llvm")
    return tvm.build(schedule.mod, target=target)


def main() -> int:
    """Run the example on gpu(0); return 0 when MXNet's result matches numpy's."""
    scaled_add = bridge_cffi.to_mxnet_func(build_scaled_add_cuda(), const_loc=[0, 1],
                                           name="scaled_add")
    shape = (1000,)
    x = np.random.uniform(size=shape).astype("float32")
    y = np.random.uniform(size=shape).astype("float32")
    xx, yy = mx.nd.array(x, ctx=mx.gpu(0)), mx.nd.array(y, ctx=mx.gpu(0))
    zz = mx.nd.empty(shape, ctx=mx.gpu(0))

    started = time.perf_counter()
    scaled_add(xx, yy, zz, 10.0)
    pushed = time.perf_counter()
    result = zz.asnumpy()  # waits for the engine, and so for the kernel on the GPU
    done = time.perf_counter()
    matches = np.allclose(result, (x + y) * 10.0, rtol=1e-6)
    status, detail = bridge_cffi.mxnet.readiness.ensure_gpu_ready(0)
    print("bridge_cffi seed example on the GPU")
    print(f"  MXNet {mx.__version__}, TVM {tvm.__version__}, target cuda {ARCH}")
    print(f"  GPU self-test: {status}: {detail}")
    print(f"  call returned after {(pushed - started) * 1e6:.1f} us; asnumpy() waited "
          f"{(done - pushed) * 1e6:.1f} us")
    print(f"  zz[:4] = {result[:4]}")
    print(f"  matches numpy (x + y) * 10: {matches}")
    return 0 if matches else 1


if __name__ == "__main__":
    raise SystemExit(main())
