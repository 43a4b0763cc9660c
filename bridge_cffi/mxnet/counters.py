"""Counters kept by the C side, for tests and leak checks."""

from __future__ import annotations

from bridge_cffi.native import ffi, lib

_FIELDS = (
    "ops_pushed",
    "ops_run",
    "ops_freed",
    "dlpack_taken",
    "dlpack_deleted",
    "kernels_alive",
    "views_staged",
)


def read_counters() -> dict[str, int]:
    """Operations pushed/run/freed, DLPack tensors taken/deleted, kernels alive, misaligned
    views staged through an aligned copy, since start.
    """
    out = ffi.new("bridge_counters*")
    lib.bridge_read_counters(out)
    return {field: int(getattr(out, field)) for field in _FIELDS}


def wait_until_released(timeout: float = 10.0) -> bool:
    """Wait until every pushed operation was freed; True if so within ``timeout`` seconds.

    MXNet wakes waiters (``waitall()``, ``asnumpy()``) when an operation completes and frees it
    just after, on the engine thread, so the freed count may trail a wait by a moment.
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        counters = read_counters()
        if counters["ops_freed"] >= counters["ops_pushed"]:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.001)
