"""Binds the extension to the MXNet and TVM copies this process already loaded, once."""

from __future__ import annotations

import logging
import threading

from bridge_cffi._native import ffi, lib
from bridge_cffi.errors import BridgeError, BridgeLibraryError, new_error_buffer
from bridge_cffi.process_maps import mapped_library_path
from bridge_cffi.stack import require

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_mxnet_bound = False
_tvmffi_bound = False
_tvm_legacy_bound: str | None = None
_cuda_bound = False

#: The CUDA driver's soname. pip's CUDA builds of MXNet link it, so `import mxnet` maps it; the
#: bridge only ever takes that copy (RTLD_NOLOAD) and never links CUDA itself.
CUDA_DRIVER = "libcuda.so.1"


def _mxnet_library() -> tuple[str, str]:
    mxnet = require("mxnet", "bridge_cffi")

    path = getattr(mxnet.base._LIB, "_name", None) or mapped_library_path("libmxnet")
    if not path:
        raise BridgeLibraryError("cannot tell which libmxnet this process loaded")
    return path, mxnet.__version__


def check_mxnet_supported(library_path: str, version_code: int) -> None:
    """Refuse, with the probe's reasons, an MXNet the bridge cannot work with.

    The probe's own check (``abi_checks.api.check_bridge``: the version, MXNet < 1.5.1 being
    refused for #15774, and the required symbols), so the bridge refuses up front instead of
    failing later.
    """
    from abi_checks.api import check_bridge

    result = check_bridge(library_path, version_code)
    for warning in result.warnings:
        logger.warning("%s", warning)
    blockers = result.blockers
    if blockers:
        raise BridgeLibraryError(
            "the bridge cannot work with this MXNet: "
            + "; ".join(blockers)
            + " (run `python -m abi_checks` for the full report)"
        )


def bind_mxnet() -> None:
    """Resolve MXNet's C API (and pick the engine error mode) from the loaded libmxnet."""
    global _mxnet_bound
    if _mxnet_bound:
        return
    with _lock:
        if _mxnet_bound:
            return
        path, version_text = _mxnet_library()
        # Version first: 1.5.0 exports MXEnginePushSyncND with another signature, so a
        # symbol check alone would accept a library the bridge would corrupt.
        import ctypes

        mxnet = require("mxnet", "bridge_cffi")
        code = ctypes.c_int()
        if mxnet.base._LIB.MXGetVersion(ctypes.byref(code)) != 0:
            raise BridgeLibraryError(f"MXGetVersion failed in {path}")
        check_mxnet_supported(path, code.value)
        error = new_error_buffer()
        status = lib.bridge_mxnet_bind(path.encode(), error)
        if status != lib.BRIDGE_OK:
            message = ffi.string(error).decode("utf-8", "replace")
            raise BridgeLibraryError(
                f"{message} (MXNet {version_text}); this MXNet build lacks a C API the bridge "
                "needs: install mxnet>=1.5.1 from PyPI, or run `python -m abi_checks`",
                status,
            )
        _mxnet_bound = True
        logger.debug("bound MXNet %s from %s", version_text, path)


def bind_tvmffi() -> None:
    """Resolve tvm-ffi's stable C ABI from the loaded libtvm_ffi."""
    global _tvmffi_bound
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
        status = lib.bridge_tvmffi_bind(path.encode(), error)
        if status != lib.BRIDGE_OK:
            message = ffi.string(error).decode("utf-8", "replace")
            raise BridgeLibraryError(
                f"{message} (apache-tvm-ffi {tvm_ffi.__version__}); install an apache-tvm-ffi "
                "that exports the stable C ABI (0.1.0 or later), or run `python -m abi_checks`",
                status,
            )
        _tvmffi_bound = True
        logger.debug("bound tvm-ffi %s from %s", tvm_ffi.__version__, path)


def bind_tvm_legacy(library_path: str) -> None:
    """Resolve the PackedFunc generation's C API (TVM < 0.20) from the loaded ``library_path``.

    Refused when a tvm-ffi generation libtvm_runtime is mapped too: the two runtimes share
    GNU-unique C++ statics and abort when both are loaded (measured with hhb-tvm 3.2.3 and
    apache-tvm 0.27); the refusal says so instead of letting a later call abort.
    """
    global _tvm_legacy_bound
    from bridge_cffi.tvm_generations import mapped_tvmffi_runtime

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
        status = lib.bridge_tvm_legacy_bind(library_path.encode(), error)
        if status != lib.BRIDGE_OK:
            message = ffi.string(error).decode("utf-8", "replace")
            raise BridgeLibraryError(
                f"{message}; this TVM lacks a C function of TVM's c_runtime_api.h the bridge "
                "needs (run `python -m abi_checks`)",
                status,
            )
        _tvm_legacy_bound = library_path
        logger.debug("bound the PackedFunc-generation TVM runtime at %s", library_path)


def bind_cuda() -> None:
    """Resolve the CUDA driver functions the GPU path needs from the loaded libcuda.so.1.

    Raises BridgeLibraryError naming the library when this process has no CUDA driver loaded
    (a CPU build of MXNet, or no driver): GPU arrays are then refused before any push.
    """
    global _cuda_bound
    if _cuda_bound:
        return
    with _lock:
        if _cuda_bound:
            return
        error = new_error_buffer()
        status = lib.bridge_cuda_bind(CUDA_DRIVER.encode(), error)
        if status != lib.BRIDGE_OK:
            message = ffi.string(error).decode("utf-8", "replace")
            raise BridgeLibraryError(message, status)
        _cuda_bound = True
        logger.debug("bound the CUDA driver from %s", CUDA_DRIVER)


def capabilities() -> dict[str, bool]:
    """The capability flags: for every OPTIONAL symbol of csrc/runtime/symbols.def, whether the
    bridge's bind found it (False for a library not bound yet). Read from the C side's own
    record, in the table's order, which abi_checks.requirements reads from the same file."""
    from abi_checks.requirements import capabilities as from_mask

    return from_mask(int(lib.bridge_symbols_bound()))


def mxnet_version_code() -> int:
    """MXGetVersion's integer for the bound MXNet."""
    bind_mxnet()
    out = ffi.new("int32_t*")
    error = new_error_buffer()
    if lib.bridge_mxnet_version(out, error) != lib.BRIDGE_OK:
        raise BridgeError(ffi.string(error).decode())
    return int(out[0])
