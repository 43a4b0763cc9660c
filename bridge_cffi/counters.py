"""Counters kept by the C side, for tests and leak checks."""

from __future__ import annotations

from bridge_cffi._native import ffi, lib

_FIELDS = ("ops_pushed", "ops_run", "ops_freed", "dlpack_taken", "dlpack_deleted", "kernels_alive")


def read_counters() -> dict[str, int]:
    """Operations pushed/run/freed, DLPack tensors taken/deleted, kernels alive, since start."""
    out = ffi.new("bridge_counters*")
    lib.bridge_read_counters(out)
    return {field: int(getattr(out, field)) for field in _FIELDS}
