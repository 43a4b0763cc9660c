"""Binds the extension to the MXNet and CUDA driver copies this process already loaded, once."""

from __future__ import annotations

import ctypes
import logging
import threading

from bridge_cffi.errors import BridgeLibraryError, check, new_error_buffer
from bridge_cffi.facts.process_maps import mapped_library_path
from bridge_cffi.facts.symbols import capabilities as capabilities_of
from bridge_cffi.facts.versions import decode_mxnet_version, mxnet_version_problem
from bridge_cffi.native import ffi, lib
from bridge_cffi.stack import require

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_mxnet_bound = False
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


def check_mxnet_supported(library_path: str, version_code: int, version_text: str = "") -> None:
    """Refuse an MXNet the bridge cannot work with, else bind its C API from ``library_path``.

    Two checks, each made once: the version rule (``bridge_cffi.facts``: MXNet < 1.5.1 is
    refused for #15774) first, since 1.5.0 exports MXEnginePushSyncND with another signature
    and a symbol check alone would accept a library the bridge would corrupt; then the C bind,
    which resolves every required symbol of csrc/runtime/symbols.def and names each one missing.
    ``version_code`` is MXGetVersion's integer (10901 for 1.9.1).
    """
    version = decode_mxnet_version(version_code)
    problem = mxnet_version_problem(version)
    if problem is not None:
        raise BridgeLibraryError(
            f"the bridge cannot work with this MXNet: {problem} "
            "(run `python -m abi_checks` for the full report)"
        )
    error = new_error_buffer()
    check(
        lib.bridge_mxnet_bind(library_path.encode(), error),
        error,
        remedy=f" (MXNet {version_text or version}); this MXNet build lacks a C API the bridge "
        "needs: install mxnet>=1.5.1 from PyPI, or run `python -m abi_checks`",
    )


def bind_mxnet() -> None:
    """Resolve MXNet's C API (and pick the engine error mode) from the loaded libmxnet."""
    global _mxnet_bound  # noqa: PLW0603 - process-wide state, bound once (under the lock)
    if _mxnet_bound:
        return
    with _lock:
        if _mxnet_bound:
            return
        path, version_text = _mxnet_library()
        mxnet = require("mxnet", "bridge_cffi")
        code = ctypes.c_int()
        # Through MXNet's own ctypes handle: the bridge's C binding does not exist yet, and
        # the version decides whether binding is safe at all.
        if mxnet.base._LIB.MXGetVersion(ctypes.byref(code)) != 0:
            raise BridgeLibraryError(f"MXGetVersion failed in {path}")
        check_mxnet_supported(path, code.value, version_text)
        _mxnet_bound = True
        logger.debug("bound MXNet %s from %s", version_text, path)


def bind_cuda() -> None:
    """Resolve the CUDA driver functions the GPU path needs from the loaded libcuda.so.1.

    Raises BridgeLibraryError naming the library when this process has no CUDA driver loaded
    (a CPU build of MXNet, or no driver): GPU arrays are then refused before any push.
    """
    global _cuda_bound  # noqa: PLW0603 - process-wide state, bound once (under the lock)
    if _cuda_bound:
        return
    with _lock:
        if _cuda_bound:
            return
        error = new_error_buffer()
        check(lib.bridge_cuda_bind(CUDA_DRIVER.encode(), error), error)
        _cuda_bound = True
        logger.debug("bound the CUDA driver from %s", CUDA_DRIVER)


def capabilities() -> dict[str, bool]:
    """The capability flags: for every OPTIONAL symbol of csrc/runtime/symbols.def, whether the
    bridge's bind found it (False for a library not bound yet). Read from the C side's own
    record, in the table's order, which bridge_cffi.facts reads from the same file.
    """
    return capabilities_of(int(lib.bridge_symbols_bound()))


def mxnet_version_code() -> int:
    """MXGetVersion's integer for the bound MXNet."""
    bind_mxnet()
    out = ffi.new("int32_t*")
    error = new_error_buffer()
    check(lib.bridge_mxnet_version(out, error), error)
    return int(out[0])
