"""Concurrency scenario: several Python threads push bridged operations at once, each on its own
arrays and all on shared read-only inputs, with native operations and waits in between.

    MXNET_ENGINE_TYPE=ThreadedEngine python tests/reliability_concurrency.py --threads 4 --ops 1500

Prints one JSON object as its last line. The caller runs it under a timeout: a deadlock fails.

Each thread keeps a numpy mirror of its own arrays; shared inputs are never written, so every
thread's results are deterministic whatever the interleaving. The threads wrap their functions
at the same moment (the bridge's one-time set-up races), share some wrappers and own others,
and one of the kernels is a Python callable (tvm_ffi.convert) that takes the GIL on the engine
thread while the other Python threads push.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import random
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mxnet as mx
import numpy as np
import tvm_ffi

import bridge_cffi
from kernels_tvm import add_into
from reliability_kernels import axpy

N = 64
F32 = np.float32


def _float32_vector(tensor: tvm_ffi.Tensor) -> np.typing.NDArray[np.float32]:
    # Not np.from_dlpack(tensor): tvm-ffi 0.1.15 hands a Python callable a Tensor with no
    # owning object for a DLTensor* argument, and its __dlpack__ then segfaults (see
    # test_reliability_failures.py). data_ptr() already includes the byte_offset.
    buffer = (ctypes.c_float * tensor.shape[0]).from_address(tensor.data_ptr())
    return np.ctypeslib.as_array(buffer)


def _triple(source: tvm_ffi.Tensor, target: tvm_ffi.Tensor) -> None:
    """A Python kernel: target = 3 * source (runs on an engine thread, taking the GIL)."""
    _float32_vector(target)[...] = _float32_vector(source) * 3


def worker(index: int, seed: int, ops: int, shared: dict, start: threading.Barrier,  # type: ignore[type-arg]
           results: list) -> None:  # type: ignore[type-arg]
    rng = random.Random(seed)
    start.wait()
    # Wrapped concurrently by every thread: the first wrap runs the bridge's set-up.
    own_add = bridge_cffi.to_mxnet_func(add_into(), const_loc=[0, 1], name=f"add_{index}")
    add, inc, triple = shared["add"], shared["axpy"], shared["triple"]
    a_np, b_np = shared["a_np"], shared["b_np"]
    a, b = shared["a"], shared["b"]
    acc_np = np.zeros(N, dtype=F32)
    out_np = np.zeros(N, dtype=F32)
    acc, out = mx.nd.zeros((N,)), mx.nd.zeros((N,))
    checks = 0
    for step in range(ops):
        choice = rng.random()
        if choice < 0.3:  # acc += alpha * shared a (or a view of b): read shared, write own
            alpha = float(rng.randint(-2, 2))
            if rng.random() < 0.5:
                inc(acc, a, alpha)
                acc_np += F32(alpha) * a_np
            else:
                lo = rng.randint(0, N)
                inc(acc[0:N - lo] if lo else acc, b[lo:N] if lo else b, alpha)
                acc_np[0:N - lo] += F32(alpha) * b_np[lo:N]
        elif choice < 0.55:  # out = shared a + shared b, through a shared or an own wrapper
            (add if rng.random() < 0.5 else own_add)(a, b, out)
            out_np[...] = a_np + b_np
        elif choice < 0.7:  # out = out + acc (own arrays, both read, one written)
            add(out, acc, out)
            out_np += acc_np
        elif choice < 0.8:  # native work on the own arrays
            mx.nd.elemwise_add(acc, out, out=acc)
            acc_np += out_np
        elif choice < 0.85:  # the Python kernel, which takes the GIL on the engine thread
            triple(acc, out)
            out_np[...] = acc_np * 3
        elif choice < 0.9:
            got = acc.asnumpy()
            if not np.array_equal(got, acc_np):
                results[index] = {"error": f"step {step}: acc differs mid-run"}
                return
            checks += 1
        else:  # keep magnitudes small: exact float32 arithmetic
            mx.nd._internal._mod_scalar(acc, scalar=97.0, out=acc)
            np.mod(acc_np, F32(97), out=acc_np)
            mx.nd._internal._mod_scalar(out, scalar=89.0, out=out)
            np.mod(out_np, F32(89), out=out_np)
    ok = np.array_equal(acc.asnumpy(), acc_np) and np.array_equal(out.asnumpy(), out_np)
    results[index] = {"ok": ok, "checks": checks}


def waiter(stop: threading.Event, counts: list[int]) -> None:
    """Waits for all engine work over and over while the workers push."""
    while not stop.is_set():
        mx.nd.waitall()
        counts[0] += 1
        time.sleep(0.005)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--ops", type=int, default=1500, help="operations per thread")
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args(argv)
    started = time.monotonic()
    rng = np.random.default_rng(options.seed)
    a_np = rng.integers(-9, 10, N).astype(F32)
    b_np = rng.integers(-9, 10, N).astype(F32)
    add_into(), axpy()  # build the TVM modules once, before the threads start
    shared = {"a_np": a_np, "b_np": b_np, "a": mx.nd.array(a_np), "b": mx.nd.array(b_np)}
    shared["add"] = bridge_cffi.to_mxnet_func(add_into(), const_loc=[0, 1])
    shared["axpy"] = bridge_cffi.to_mxnet_func(axpy(), const_loc=[1])
    shared["triple"] = bridge_cffi.to_mxnet_func(tvm_ffi.convert(_triple), const_loc=[0])
    before = bridge_cffi.read_counters()
    results: list = [None] * options.threads  # type: ignore[type-arg]
    start = threading.Barrier(options.threads)
    threads = [threading.Thread(target=worker, args=(i, options.seed * 100 + i, options.ops,
                                                     shared, start, results))
               for i in range(options.threads)]
    stop, waits = threading.Event(), [0]
    waiting = threading.Thread(target=waiter, args=(stop, waits))
    waiting.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    waiting.join()
    mx.nd.waitall()
    released = bridge_cffi.wait_until_released()
    after = bridge_cffi.read_counters()
    shared_intact = (np.array_equal(shared["a"].asnumpy(), a_np)
                     and np.array_equal(shared["b"].asnumpy(), b_np))
    report = {
        "threads": options.threads,
        "ops_per_thread": options.ops,
        "results": results,
        "shared_intact": shared_intact,
        "pushed": after["ops_pushed"] - before["ops_pushed"],
        "waitall_calls": waits[0],
        "all_released": released,
        "dlpack_balanced": after["dlpack_taken"] == after["dlpack_deleted"],
        "seconds": round(time.monotonic() - started, 2),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
