"""The bridge's exception tree, and the one place that turns a C return code into it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridge_cffi.native import CData, ffi, lib

if TYPE_CHECKING:
    # MXNet ships no types (its MXNetError would be Any, and a class cannot derive from Any to
    # mypy); mxnet.base.MXNetError is a RuntimeError.
    _EngineBaseError = RuntimeError
else:
    try:
        from mxnet.base import MXNetError as _EngineBaseError
    except Exception:  # noqa: BLE001 - MXNet absent or broken: nothing can raise engine errors yet

        class _EngineBaseError(RuntimeError):
            """Stands in for mxnet.base.MXNetError while MXNet cannot be imported."""


class BridgeError(Exception):
    """Base of every error the bridge raises; ``code`` is the C return code (BRIDGE_E_*)."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


class BridgeTypeError(BridgeError, TypeError):
    """An argument has the wrong type."""


class BridgeValueError(BridgeError, ValueError):
    """An argument has a wrong value (aliasing the bridge cannot resolve, devices, arity)."""


class BridgeEngineError(BridgeError, _EngineBaseError):
    """MXNet reported an error, or a bridged function failed on the engine."""


class BridgeLibraryError(BridgeError, ImportError):
    """MXNet or tvm-ffi is missing, too old, or lacks a symbol the bridge needs."""


class BridgeKernelError(BridgeError):
    """A kernel was refused (ABI version, struct size) or failed."""


_BY_CODE: dict[int, type[BridgeError]] = {
    lib.BRIDGE_E_TYPE: BridgeTypeError,
    lib.BRIDGE_E_VALUE: BridgeValueError,
    lib.BRIDGE_E_MXNET: BridgeEngineError,
    lib.BRIDGE_E_SYMBOL: BridgeLibraryError,
    lib.BRIDGE_E_KERNEL: BridgeKernelError,
    lib.BRIDGE_E_STATE: BridgeError,
    lib.BRIDGE_E_MEMORY: BridgeError,
    lib.BRIDGE_E_RECORDED: BridgeEngineError,
    lib.BRIDGE_E_GPU_UNTESTED: BridgeError,
}


def error_class(code: int) -> type[BridgeError]:
    """The exception class for a BRIDGE_E_* code."""
    return _BY_CODE.get(code, BridgeError)


def new_error_buffer() -> CData:
    """A fresh BRIDGE_ERROR_CAPACITY-byte message buffer for one C call."""
    return ffi.new("char[]", lib.BRIDGE_ERROR_CAPACITY)


def check(code: int, error_buffer: CData, context: str = "", remedy: str = "") -> None:
    """Raise the exception matching a non-zero C return code, with the C message.

    ``context`` goes before the message (what was being done), followed by ": "; ``remedy``
    is appended as given, its own separator first (what to do about it).
    """
    if code == lib.BRIDGE_OK:
        return
    message = ffi.string(error_buffer).decode("utf-8", "replace")
    if context:
        message = f"{context}: {message}"
    if remedy:
        message += remedy
    raise error_class(code)(message, code)
