"""Binds the extension to the TVM runtime copies this process already loaded, once each."""

from __future__ import annotations

import logging
import threading

from bridge_cffi.errors import BridgeLibraryError, check, new_error_buffer
from bridge_cffi.facts.process_maps import mapped_library_path
from bridge_cffi.native import lib
from bridge_cffi.producers.generations import mapped_tvmffi_runtime
from bridge_cffi.stack import require

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_tvmffi_bound = False
_tvm_legacy_bound: str | None = None


def bind_tvmffi() -> None:
    """Resolve tvm-ffi's stable C ABI from the loaded libtvm_ffi."""
    global _tvmffi_bound  # noqa: PLW0603 - process-wide state, bound once (under the lock)
    if _tvmffi_bound:
        return
    with _lock:
        if _tvmffi_bound:
            return
        tvm_ffi = require("tvm_ffi", "a tvm-ffi function")
        path = mapped_library_path("libtvm_ffi")
        if path is None:
            raise BridgeLibraryError(
                "tvm_ffi is imported but no libtvm_ffi.so is mapped in this process"
            )
        error = new_error_buffer()
        check(
            lib.bridge_tvmffi_bind(path.encode(), error),
            error,
            remedy=f" (apache-tvm-ffi {tvm_ffi.__version__}); install an apache-tvm-ffi that "
            "exports the stable C ABI (0.1.0 or later), or run `python -m abi_checks`",
        )
        _tvmffi_bound = True
        logger.debug("bound tvm-ffi %s from %s", tvm_ffi.__version__, path)


def bind_tvm_legacy(library_path: str) -> None:
    """Resolve the PackedFunc generation's C API (TVM < 0.20) from the loaded ``library_path``.

    Refused when a tvm-ffi generation libtvm_runtime is mapped too: the two runtimes share
    GNU-unique C++ statics and abort when both are loaded (measured with hhb-tvm 3.2.3 and
    apache-tvm 0.27); the refusal says so instead of letting a later call abort.
    """
    global _tvm_legacy_bound  # noqa: PLW0603 - process-wide state, bound once (under the lock)
    if _tvm_legacy_bound is not None:
        if _tvm_legacy_bound != library_path:
            raise BridgeLibraryError(
                f"func: this process already uses the TVM runtime at {_tvm_legacy_bound}; a "
                f"function of a second PackedFunc-generation runtime ({library_path}) cannot be "
                "bridged beside it"
            )
        return
    with _lock:
        if _tvm_legacy_bound is not None:
            return
        other = mapped_tvmffi_runtime()
        if other is not None:
            raise BridgeLibraryError(
                f"func: a TVM of the PackedFunc generation ({library_path}) and one of the "
                f"tvm-ffi generation ({other}) are both loaded; their runtimes share C++ "
                "statics and abort when used together: use one TVM per process"
            )
        error = new_error_buffer()
        check(
            lib.bridge_tvm_legacy_bind(library_path.encode(), error),
            error,
            remedy="; this TVM lacks a C function of TVM's c_runtime_api.h the bridge needs "
            "(run `python -m abi_checks`)",
        )
        _tvm_legacy_bound = library_path
        logger.debug("bound the PackedFunc-generation TVM runtime at %s", library_path)
