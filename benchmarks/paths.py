"""The call paths being compared, all running the same (x + y) * s kernel where they can."""

from __future__ import annotations

import runpy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mxnet as mx
import numpy as np
import tvm
import tvm_ffi

import bridge_cffi
import diagnostics
from bridge_cffi.mxnet.packing import pack_arguments
from bridge_cffi.native import lib

SCALE = 2.0
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name: str) -> dict[str, Any]:
    """The globals of ``examples/<name>.py``, so benchmarks measure the examples' own code."""
    return runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name=name)


def build_scaled_add() -> tvm.runtime.Module:
    """The seed's kernel, z = (x + y) * s, exactly as the seed example builds it."""
    return load_example("seed_example")["build_scaled_add"]()


@dataclass
class Paths:
    """One set of arrays of length n and a zero-argument callable per path."""

    bridge: Callable[[], object]
    bridge_c_entry: Callable[[], object]  # the same call with its arguments packed beforehand
    floor_batch: Callable[[int], object]
    elemwise_add: Callable[[], object]
    native_two_ops: Callable[[], object]
    sync_dlpack: Callable[[], object]
    direct_tvm: Callable[[], object]
    direct_protocol: Callable[[], object]  # the same kernel through the direct consumer


def make_paths(module: tvm.runtime.Module, n: int) -> Paths:
    """Arrays of length n for every path, and the callables that run each path once."""
    rng = np.random.default_rng(0)
    x_np = rng.uniform(size=n).astype("float32")
    y_np = rng.uniform(size=n).astype("float32")
    x, y, z = mx.nd.array(x_np), mx.nd.array(y_np), mx.nd.zeros((n,))
    bridged = bridge_cffi.to_mxnet_func(module, const_loc=[0, 1], name="bench_scaled_add")
    # Compiled code gives a BridgedFunction, whose C plan the bridge_c_entry path calls.
    assert isinstance(bridged, bridge_cffi.BridgedFunction)  # noqa: S101 - narrows for mypy; set-up, not timed
    function = module["main"]

    # The floor lives in the diagnostics extension, not in the one users install.
    floor_ffi, floor_lib = diagnostics.load()
    handles = floor_ffi.new("void*[]", [floor_ffi.cast("void*", a.handle.value) for a in (x, y, z)])
    error = floor_ffi.new("char[]", floor_lib.BRIDGE_ERROR_CAPACITY)

    def floor_batch(calls: int) -> None:
        if floor_lib.bridge_floor_push_many(handles, 2, 1, calls, error) != floor_lib.BRIDGE_OK:
            raise RuntimeError(floor_ffi.string(error).decode())

    out = mx.nd.zeros((n,))

    def native_two_ops() -> None:
        nonlocal out
        out = (x + y) * SCALE

    def sync_dlpack() -> None:
        tx = tvm_ffi.from_dlpack(x.to_dlpack_for_read())
        ty = tvm_ffi.from_dlpack(y.to_dlpack_for_read())
        tz = tvm_ffi.from_dlpack(z.to_dlpack_for_write())
        function(tx, ty, tz, SCALE)

    tx, ty, tz = (tvm.runtime.tensor(a) for a in (x_np, y_np, np.zeros(n, "float32")))
    # What one call costs once Python has packed its arguments: the C entry alone.
    packed = pack_arguments((x, y, z, SCALE))
    plan = bridged._plan
    bridge_call = lib.bridge_call
    direct = bridge_cffi.direct(module, const_loc=[0, 1], name="bench_direct")
    dx, dy, dz = (tvm.runtime.tensor(a) for a in (x_np, y_np, np.zeros(n, "float32")))

    return Paths(
        bridge=lambda: bridged(x, y, z, SCALE),
        bridge_c_entry=lambda: bridge_call(plan, packed, len(packed)),
        floor_batch=floor_batch,
        elemwise_add=lambda: mx.nd.elemwise_add(x, y, out=z),
        native_two_ops=native_two_ops,
        sync_dlpack=sync_dlpack,
        direct_tvm=lambda: function(tx, ty, tz, SCALE),
        direct_protocol=lambda: direct(dx, dy, dz, SCALE),
    )


@dataclass
class ViewPaths:
    """The seed kernel (default buffers: needs byte_offset 0) on views of one array of n."""

    aligned_view: Callable[[], object]  # x[16:16+n]: data 64-byte aligned, passed as is
    misaligned_view: Callable[[], object]  # x[1:1+n]: staged through an aligned copy
    memcpy: Callable[[], object]  # one copy of that argument's bytes (numpy, same size)


def make_view_paths(module: tvm.runtime.Module, n: int) -> ViewPaths:
    """Views for the staging row: one read argument aligned or not, the rest whole arrays."""
    bridged = bridge_cffi.to_mxnet_func(module, const_loc=[0, 1], name="bench_views")
    base = mx.nd.array(np.random.default_rng(1).uniform(size=n + 32).astype("float32"))
    aligned, misaligned = base[16 : 16 + n], base[1 : 1 + n]
    y, z = mx.nd.ones((n,)), mx.nd.zeros((n,))
    source, target = np.ones(n, "float32"), np.zeros(n, "float32")
    return ViewPaths(
        aligned_view=lambda: bridged(aligned, y, z, SCALE),
        misaligned_view=lambda: bridged(misaligned, y, z, SCALE),
        memcpy=lambda: np.copyto(target, source),
    )
