"""GPU scenarios, run in a fresh interpreter per engine type (MXNET_ENGINE_TYPE is read at start).

``python tests/gpu/gpu_scenarios.py [NAME ...]`` runs the named scenarios (default: all but
``sticky_fault``) on gpu(0) and prints one line ``RESULTS {json}``: per scenario ``{"ok": bool,
"detail": str}``. test_gpu_bridge.py runs it under each engine and asserts scenario by
scenario. ``sticky_fault`` leaves the CUDA context unusable, so it runs alone and the process
then ends with os._exit.

MXNet's own GPU kernels cannot run on an sm_90 GPU with pip's mxnet-cu117 (no sm_90 images):
inputs are made on the host and copied (``mx.nd.array(a, ctx=gpu)``), never ``mx.nd.zeros``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mxnet as mx
import numpy as np
from mxnet.base import MXNetError

import bridge_cffi
import gpu_kernels
from bridge_cffi.mxnet.interface import MxnetFunc
from bridge_cffi.mxnet.readiness import ensure_gpu_ready

GPU = mx.gpu(0)
ENGINE = os.environ.get("MXNET_ENGINE_TYPE", "ThreadedEnginePerDevice")
NAIVE = ENGINE == "NaiveEngine"
#: How long the slow kernel spins: long enough that a read not waiting for it cannot pass.
SLOW_NS = 300_000_000
SLOW_S = SLOW_NS / 1e9


def on_gpu(values: np.typing.NDArray[np.float32]) -> mx.nd.NDArray:
    """A GPU array holding ``values`` (copied from the host: no MXNet GPU kernel runs)."""
    return mx.nd.array(values, ctx=GPU, dtype=values.dtype)


def filled(n: int, value: float) -> mx.nd.NDArray:
    return on_gpu(np.full(n, value, dtype="float32"))


def inline(name: str) -> MxnetFunc:
    consts = {"scale_into": [0], "add_into": [0, 1]}.get(name, [])
    return bridge_cffi.to_mxnet_func(gpu_kernels.inline_module()[name], const_loc=consts,
                                     name=name)


SCENARIOS: dict[str, Callable[[], str]] = {}


def scenario(func: Callable[[], str]) -> Callable[[], str]:
    SCENARIOS[func.__name__] = func
    return func


@scenario
def self_test_confirmed() -> str:
    status, detail = ensure_gpu_ready(0)
    assert status == "confirmed", f"{status}: {detail}"
    return detail


@scenario
def seed_example() -> str:
    # The seed, on the GPU: tvm.build(..., target=cuda) bridged with const_loc=[0, 1].
    mxf = bridge_cffi.to_mxnet_func(gpu_kernels.seed_cuda("float32"), const_loc=[0, 1])
    rng = np.random.default_rng(1)
    x, y = rng.uniform(size=20).astype("float32"), rng.uniform(size=20).astype("float32")
    xx, yy = on_gpu(x), on_gpu(y)
    zz = mx.nd.empty((20,), ctx=GPU)
    mxf(xx, yy, zz, 10.0)
    np.testing.assert_allclose(zz.asnumpy(), (x + y) * 10, rtol=1e-6)
    return "seed (x + y) * 10 right on gpu(0), n=20"


@scenario
def dtypes() -> str:
    # MXNet's tests/python/gpu/test_tvm_bridge.py, cuda half: (x + y) * scale.astype(dtype).
    rng = np.random.default_rng(2)
    done = []
    for dtype in ("int8", "uint8", "int64", "float32", "float64"):
        mxf = bridge_cffi.to_mxnet_func(gpu_kernels.seed_cuda(dtype), const_loc=[0, 1])
        if dtype.startswith(("int", "uint")):
            x = rng.integers(0, 5, size=20).astype(dtype)
            y = rng.integers(0, 5, size=20).astype(dtype)
        else:
            x, y = rng.uniform(size=20).astype(dtype), rng.uniform(size=20).astype(dtype)
        zz = mx.nd.empty((20,), ctx=GPU, dtype=dtype)
        mxf(on_gpu(x), on_gpu(y), zz, 10.0)
        expected = ((x + y) * np.array(10, dtype=dtype)).astype(dtype)
        got = zz.asnumpy()
        assert got.dtype == np.dtype(dtype), got.dtype
        np.testing.assert_allclose(got, expected, rtol=1e-6)
        done.append(dtype)
    return "right for " + ", ".join(done)


def _slow_then(wait: Callable[[mx.nd.NDArray], object]) -> str:
    """A slow kernel writes z; ``wait(z)`` must not return before the kernel finished.

    Judged by the clock (the wait took at least the kernel's spin time) and by the values.
    """
    slow_fill = inline("slow_fill")
    z = filled(64, -1.0)
    z.wait_to_read()
    started = time.perf_counter()
    slow_fill(z, 7.0, SLOW_NS)
    wait(z)
    elapsed = time.perf_counter() - started
    values = z.asnumpy()
    assert elapsed >= 0.9 * SLOW_S, (
        f"the wait returned after {elapsed * 1e3:.1f} ms, the kernel spins {SLOW_S * 1e3:.0f} ms"
    )
    assert (values == 7.0).all(), f"read {values[:4]}... before the kernel finished"
    return f"returned after {elapsed * 1e3:.0f} ms, kernel spins {SLOW_S * 1e3:.0f} ms"


@scenario
def slow_kernel_then_asnumpy() -> str:
    return _slow_then(lambda z: z.asnumpy())


@scenario
def slow_kernel_then_wait_to_read() -> str:
    return _slow_then(lambda z: z.wait_to_read())


@scenario
def slow_kernel_then_waitall() -> str:
    return _slow_then(lambda z: mx.nd.waitall())  # noqa: ARG005 - _slow_then passes z


@scenario
def chain_of_bridged_ops() -> str:
    slow_fill, scale_into, add_into = inline("slow_fill"), inline("scale_into"), inline("add_into")
    y, z, w = filled(256, 0.0), filled(256, 0.0), filled(256, 0.0)
    slow_fill(y, 3.0, SLOW_NS)   # y = 3 (slow)
    scale_into(y, z, 2.0)        # z = 6, reads y
    add_into(y, z, w)            # w = 9, reads both
    seed = bridge_cffi.to_mxnet_func(gpu_kernels.seed_cuda("float32"), const_loc=[0, 1])
    out = filled(256, 0.0)
    seed(w, z, out, 0.5)         # out = 7.5 (a tvm.build kernel after tvm-ffi ones)
    got = out.asnumpy()
    assert (got == 7.5).all(), f"chain gave {got[:4]}"
    return "slow_fill -> scale_into -> add_into -> seed: 7.5 everywhere"


@scenario
def chain_with_mxnet_copies() -> str:
    slow_fill, scale_into = inline("slow_fill"), inline("scale_into")
    y = filled(128, 0.0)
    slow_fill(y, 5.0, SLOW_NS)
    on_host = y.copyto(mx.cpu())                        # MXNet's copy reads y
    as_cpu = y.as_in_context(mx.cpu())
    y2 = mx.nd.empty((128,), ctx=GPU)
    y.copyto(y2)                                        # GPU to GPU copy, then a bridged read
    z = filled(128, 0.0)
    scale_into(y2, z, 2.0)
    assert (on_host.asnumpy() == 5).all(), on_host.asnumpy()[:4]
    assert (as_cpu.asnumpy() == 5).all(), as_cpu.asnumpy()[:4]
    assert (z.asnumpy() == 10).all(), z.asnumpy()[:4]
    host = mx.nd.array(np.arange(128, dtype="float32"))  # host -> GPU copy, then bridged
    x = host.as_in_context(GPU)
    scale_into(x, z, 3.0)
    back = z.as_in_context(mx.cpu())
    assert (back.asnumpy() == np.arange(128) * 3).all()
    return "copyto(cpu), as_in_context(cpu), copyto(gpu array), as_in_context(gpu) all ordered"


@scenario
def many_calls_on_one_array() -> str:
    increment = inline("increment")
    z = filled(20, 0.0)
    for _ in range(500):
        increment(z)
    got = z.asnumpy()
    assert (got == 500).all(), got[:4]
    return "500 read-write calls on one array: 500"


@scenario
def mixed_devices_refused_before_push() -> str:
    scale_into = inline("scale_into")
    before = bridge_cffi.read_counters()["ops_pushed"]
    try:
        scale_into(mx.nd.ones((8,)), filled(8, 0.0), 2.0)
    except ValueError as error:
        message = str(error)
    else:
        raise AssertionError("a CPU input with a GPU output was accepted")
    assert bridge_cffi.read_counters()["ops_pushed"] == before, "something was pushed"
    assert "all arrays of one call must be on one device" in message, message
    return message


def where_it_raises(call: Callable[[], object], written: mx.nd.NDArray) -> tuple[str, str]:
    """Run a failing GPU ``call`` then wait on the array it wrote: where MXNet raised ("call"
    under NaiveEngine, else "wait", asserted) and the message.
    """
    raised_at, message = "nowhere", ""
    try:
        call()
        raised_at = "not at the call"
        written.wait_to_read()
    except MXNetError as error:
        raised_at = "call" if raised_at == "nowhere" else "wait"
        message = str(error)
    assert raised_at == ("call" if NAIVE else "wait"), raised_at
    return raised_at, message


@scenario
def kernel_error_reaches_the_next_wait() -> str:
    bad_launch, increment = inline("bad_launch"), inline("increment")
    z = filled(8, 1.0)
    raised_at, message = where_it_raises(lambda: bad_launch(z), z)
    assert "bad_launch: launch failed" in message, message
    assert "called with #0 float32 (8,)" in message, message
    increment(z)                      # the array and the engine keep working
    assert (z.asnumpy() == 2).all()
    return f"raised at the {raised_at}: {message.splitlines()[0][:160]}"


@scenario
def arrays_and_wrapper_dropped_right_after_the_call() -> str:
    def push() -> mx.nd.NDArray:
        slow_fill = inline("slow_fill")
        scale_into = inline("scale_into")
        y = filled(4096, 0.0)
        z = mx.nd.empty((4096,), ctx=GPU)
        slow_fill(y, 4.0, SLOW_NS)
        scale_into(y, z, 0.25)
        return z  # y, both wrappers and their modules' references go out of scope here

    z = push()
    got = z.asnumpy()
    assert (got == 1).all(), got[:4]
    del z
    mx.nd.waitall()
    assert bridge_cffi.wait_until_released(), "operations still hold references"
    return "inputs, wrappers dropped while pending: right result, all released"


@scenario
def tvm_ffi_kernel_gets_the_engine_stream() -> str:
    record_stream = inline("record_stream")
    out = on_gpu(np.zeros(1, dtype="int64"))
    record_stream(out)
    stream = int(out.asnumpy()[0])
    assert stream not in (0, 1, 2), f"the kernel ran on the default stream {stream:#x}"
    return f"TVMFFIEnvGetStream gave {stream:#x}, the engine's stream"


@scenario
def c_protocol_kernel_on_the_stream() -> str:
    copy = bridge_cffi.to_mxnet_func(
        bridge_cffi.load_c_kernel(gpu_kernels.c_copy_kernel_library()), const_loc=[0]
    )
    slow_fill = inline("slow_fill")
    x = filled(1000, 0.0)
    out = filled(1000, -1.0)
    slow_fill(x, 9.0, SLOW_NS)
    copy(x, out)                     # cuMemcpyDtoDAsync on the engine's stream, after slow_fill
    got = out.asnumpy()
    assert (got == 9).all(), got[:4]
    values = np.arange(1000, dtype="float32")
    copy(on_gpu(values), out)
    assert (out.asnumpy() == values).all()
    return "cuMemcpyDtoDAsync on the given stream: ordered after a slow kernel, values right"


@scenario
def gpu_views() -> str:
    scale_into = inline("scale_into")
    seed = bridge_cffi.to_mxnet_func(gpu_kernels.seed_cuda("float32"), const_loc=[0, 1])
    values = np.arange(256, dtype="float32")
    base = on_gpu(values)
    out = filled(64, 0.0)

    def staged() -> int:
        mx.nd.waitall()
        return int(bridge_cffi.read_counters()["views_staged"])

    # Aligned views (64 floats = 256 bytes in): byte_offset 0, passed as they are.
    before = staged()
    seed(base[64:128], base[128:192], out, 1.0)
    np.testing.assert_allclose(out.asnumpy(), values[64:128] + values[128:192])
    assert staged() == before, "an aligned GPU view was staged"
    # A misaligned view into a kernel that reads byte_offset (a tvm-ffi function of our own).
    part = filled(20, 0.0)
    scale_into(base[1:21], part, 2.0)
    np.testing.assert_allclose(part.asnumpy(), values[1:21] * 2.0)
    assert staged() == before, "a view was staged for a kernel that reads byte_offset"
    # Misaligned views, read and written, into TVM's default buffers (byte_offset 0 only):
    # staged through aligned device copies on the engine's stream.
    target = on_gpu(np.full(64, -1.0, dtype="float32"))
    seed(base[1:21], base[21:41], target[3:23], 10.0)
    got = target.asnumpy()
    np.testing.assert_allclose(got[3:23], (values[1:21] + values[21:41]) * 10.0)
    assert (got[:3] == -1).all() and (got[23:] == -1).all(), "bytes beside the view changed"
    assert staged() == before + 3, f"{staged() - before} views staged, expected 3"
    # A slow kernel writes the base; the staged read of its view must wait for it.
    slow_fill = inline("slow_fill")
    slow_fill(base, 2.0, SLOW_NS)
    seed(base[1:21], base[21:41], part, 1.0)
    assert (part.asnumpy() == 4.0).all(), part.asnumpy()[:4]
    return ("aligned views as they are; byte_offset views for tvm-ffi kernels; misaligned views "
            "into TVM default buffers staged on the device (read, written, ordered)")


@scenario
def gpu_refused_by_its_self_test_is_refused_before_push() -> str:
    from bridge_cffi.native import lib

    scale_into = inline("scale_into")
    x, z = filled(8, 1.0), filled(8, 0.0)
    before = bridge_cffi.read_counters()["ops_pushed"]
    lib.bridge_confirm_gpu(0, 0, b"stand-in reason for this test")
    try:
        scale_into(x, z, 2.0)
    except bridge_cffi.BridgeError as error:
        message = str(error)
    else:
        message = ""
    finally:
        lib.bridge_confirm_gpu(0, 1, b"")
    assert "GPU arrays on gpu(0) are refused: stand-in reason for this test" in message, message
    assert bridge_cffi.read_counters()["ops_pushed"] == before, "something was pushed"
    scale_into(x, z, 2.0)
    assert (z.asnumpy() == 2).all()
    return message


@scenario
def counters_balanced() -> str:
    mx.nd.waitall()
    assert bridge_cffi.wait_until_released()
    counters = bridge_cffi.read_counters()
    assert counters["dlpack_taken"] == counters["dlpack_deleted"], counters
    assert counters["ops_pushed"] == counters["ops_freed"], counters
    return f"{counters['ops_pushed']} ops pushed and freed, DLPack balanced"


def sticky_fault() -> str:
    """An illegal address on the GPU: the engine's stream sync fails and says so at the wait."""
    fault = inline("fault")
    z = filled(8, 0.0)
    raised_at, message = where_it_raises(lambda: fault(z), z)
    assert "cuStreamSynchronize on the engine's stream returned" in message, message
    assert "CUDA_ERROR_ILLEGAL_ADDRESS" in message, message
    return f"raised at the {raised_at}: {message.splitlines()[0][:200]}"


def main(names: list[str]) -> None:
    if names == ["sticky_fault"]:
        chosen = {"sticky_fault": sticky_fault}
    else:
        chosen = {name: SCENARIOS[name] for name in names} if names else dict(SCENARIOS)
    results: dict[str, dict[str, object]] = {}
    for name, func in chosen.items():
        started = time.perf_counter()
        try:
            detail = func()
            results[name] = {"ok": True, "detail": detail}
        except BaseException as error:  # noqa: BLE001 - every failure is a result
            results[name] = {
                "ok": False,
                "detail": f"{type(error).__name__}: {error}\n{traceback.format_exc()[-1500:]}",
            }
        results[name]["seconds"] = round(time.perf_counter() - started, 3)
        print(f"{ENGINE} {name}: {'ok' if results[name]['ok'] else 'FAILED'}", file=sys.stderr,
              flush=True)
    print("RESULTS " + json.dumps(results), flush=True)
    if "sticky_fault" in chosen:
        os._exit(0)  # the CUDA context is broken for good: skip MXNet's teardown


if __name__ == "__main__":
    main(sys.argv[1:])
