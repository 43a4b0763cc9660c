"""The PackedFunc-generation producer (TVM < 0.20, e.g. hhb-tvm's TVM 0.16): its runtime
Modules, PackedFuncs and ``export_library`` files become protocol kernels through
csrc/producers/tvm_legacy.c, which calls ``TVMFuncCall`` from C on the engine thread.
"""

from __future__ import annotations

import logging
import os
from typing import cast

from bridge_cffi.errors import BridgeLibraryError, BridgeTypeError, check, new_error_buffer
from bridge_cffi.foreign_types import TvmFunction, TvmModule
from bridge_cffi.native import CData, ffi, lib
from bridge_cffi.producers.binding import bind_tvm_legacy
from bridge_cffi.producers.generations import mapped_packed_func_runtime, packed_func_runtime_of

logger = logging.getLogger("bridge_cffi")

#: The module's entry function, as TVM's codegen names it (``runtime::symbol::tvm_module_main``).
ENTRY_FUNCTION = "__tvm_main__"


def _new_kernel(
    source: CData | bytes, source_kind: int, function_name: str | None, shown: str, context: str
) -> CData:
    out = ffi.new("bridge_kernel**")
    error = new_error_buffer()
    # With DEBUG logging on, a kernel failure carries TVM's whole text, backtrace included.
    verbose = 1 if logger.isEnabledFor(logging.DEBUG) else 0
    check(
        lib.bridge_tvm_legacy_kernel_new(
            source,
            source_kind,
            function_name.encode() if function_name else ffi.NULL,
            shown.encode(),
            verbose,
            out,
            error,
        ),
        error,
        context,
    )
    return cast("CData", out[0])  # a field of cdata is Any to mypy (_native.pyi)


def from_packed_func(
    function: TvmFunction, name: str | None, runtime: str
) -> tuple[CData, str, object]:
    """(kernel pointer, name, keepalive) for a PackedFunc; the kernel holds its own reference."""
    bind_tvm_legacy(runtime)
    shown = name or getattr(function, "name", None) or "packed_func"
    handle = ffi.cast("void*", function.handle.value)
    return (_new_kernel(handle, lib.BRIDGE_LEGACY_FROM_FUNCTION, None, shown, "func"), shown,
            function)


def from_packed_func_module(
    module: TvmModule, name: str | None, runtime: str
) -> tuple[CData, str, object]:
    """(kernel pointer, name, keepalive) for a runtime Module, through its entry function."""
    bind_tvm_legacy(runtime)
    entry = _entry_function_name(module)
    shown = name or entry
    handle = ffi.cast("void*", module.handle.value)
    pointer = _new_kernel(handle, lib.BRIDGE_LEGACY_FROM_MODULE, entry, shown, "func")
    return pointer, shown, module


def from_packed_func_library(
    path: str | os.PathLike[str], name: str | None
) -> tuple[CData, str, object]:
    """(kernel pointer, name, keepalive) for a PackedFunc-generation ``export_library`` file,
    loaded by the TVM runtime this process already uses (``TVMModLoadFromFile``).
    """
    runtime = mapped_packed_func_runtime()
    if runtime is None:
        raise BridgeLibraryError(
            f"func: {os.fspath(path)} is a TVM module of the PackedFunc generation (TVM < 0.20), "
            "and no TVM runtime of that generation is loaded: import the TVM that built it "
            "(e.g. `import tvm` from hhb-tvm) before bridging its exported library"
        )
    bind_tvm_legacy(runtime)
    absolute = os.path.abspath(os.fspath(path))
    shown = name or os.path.basename(absolute)
    pointer = _new_kernel(
        absolute.encode(), lib.BRIDGE_LEGACY_FROM_FILE, ENTRY_FUNCTION, shown, "func"
    )
    return pointer, shown, None


def _entry_function_name(module: TvmModule) -> str:
    """The function the module's entry symbol names, else ``__tvm_main__`` itself."""
    entry = getattr(module, "entry_name", ENTRY_FUNCTION)
    if not isinstance(entry, str):
        raise BridgeTypeError("func: the TVM module's entry_name is not a string")
    return entry


__all__ = [
    "ENTRY_FUNCTION",
    "from_packed_func",
    "from_packed_func_library",
    "from_packed_func_module",
    "packed_func_runtime_of",
]
