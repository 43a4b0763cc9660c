"""Refuse, instead of hanging, a Python kernel's wait for MXNet arrays on MXNet's engine.

A Python function bridged with ``to_mxnet_func`` runs on an engine worker thread. If it waits
for an MXNet array there (``asnumpy()``, ``wait_to_read()``, ``mx.nd.waitall()``, copying into
an array), the worker waits for work queued behind itself: with MXNet's default of one CPU
worker the engine deadlocks for good. While such a function runs, a per-thread profile hook
(``sys.setprofile``, which sees Python-level calls only) watches for MXNet's waiting methods
and raises instead; the kernel then fails with the reason, which reaches Python at the next
wait on its outputs. Compiled kernels are never watched; a function the user converted with
``tvm_ffi.convert`` themselves cannot be, since tvm-ffi keeps no handle on it (pass the
plain function to ``to_mxnet_func`` instead).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

from bridge_cffi.errors import BridgeEngineError


@functools.lru_cache(maxsize=1)
def waiting_code() -> dict[CodeType, str]:
    """The code objects of MXNet's Python methods that block on pending engine work."""
    from mxnet.ndarray import ndarray as nd

    found = {
        nd.NDArray.asnumpy.__code__: "NDArray.asnumpy",
        nd.NDArray.wait_to_read.__code__: "NDArray.wait_to_read",
        nd.NDArray._sync_copyfrom.__code__: "NDArray._sync_copyfrom (mx.nd.array, x[:] = ...)",
        nd.waitall.__code__: "mx.nd.waitall",
    }
    try:
        from mxnet import numpy as mxnp

        found.setdefault(mxnp.ndarray.asnumpy.__code__, "mx.np.ndarray.asnumpy")
    except (ImportError, AttributeError):  # MXNet 1.5 has no mx.np
        pass
    return found


def guarded(function: Callable[..., Any], name: str) -> Callable[..., Any]:
    """``function`` wrapped so that, while it runs, MXNet's waits raise BridgeEngineError."""
    waits = waiting_code()

    def refuse_waits(frame: FrameType, event: str, arg: object) -> None:  # noqa: ARG001 - sys.setprofile's
        if event == "call" and frame.f_code in waits:
            raise BridgeEngineError(
                f"{name}: the bridged Python kernel called {waits[frame.f_code]} on MXNet's "
                "engine thread, which would wait for work queued behind this very kernel and "
                "deadlock the engine; use the kernel's arguments (they are ready), or compute "
                "outside the engine and pass the results in"
            )

    @functools.wraps(function)
    def run(*args: object) -> object:
        previous = sys.getprofile()
        sys.setprofile(refuse_waits)  # this thread only
        try:
            return function(*args)
        finally:
            sys.setprofile(previous)

    return run
