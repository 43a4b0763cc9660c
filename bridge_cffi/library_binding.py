"""Binds the extension to the MXNet and tvm-ffi copies this process already loaded, once."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from bridge_cffi._native import ffi, lib
from bridge_cffi.errors import BridgeError, BridgeLibraryError, new_error_buffer

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_mxnet_bound = False
_tvmffi_bound = False


def mapped_library_path(stem: str) -> str | None:
    """The path of the first mapped file named ``stem``*.so* in this process, if any."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                fields = line.split(None, 5)
                if len(fields) == 6 and Path(fields[5].strip()).name.startswith(stem + ".so"):
                    return fields[5].strip()
    except OSError:
        return None
    return None


def _mxnet_library() -> tuple[str, str]:
    import mxnet

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

        import mxnet

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
        import tvm_ffi

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


def mxnet_version_code() -> int:
    """MXGetVersion's integer for the bound MXNet."""
    bind_mxnet()
    out = ffi.new("int32_t*")
    error = new_error_buffer()
    if lib.bridge_mxnet_version(out, error) != lib.BRIDGE_OK:
        raise BridgeError(ffi.string(error).decode())
    return int(out[0])
