"""Which TVM generation an object, a loaded library or an exported file belongs to.

Two generations speak different C ABIs: the PackedFunc generation (TVM < 0.20: ``TVMFuncCall``,
``TVMValue`` + type codes) and the tvm-ffi generation (TVM >= 0.20: ``TVMFFIFunctionCall``,
``TVMFFIAny``). Everything here decides by probing what a library exports or what an object
is, never by a version string: third-party builds (hhb-tvm 3.2.3 is TVM 0.16.dev0) carry
version strings of their own.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path
from typing import Literal

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from bridge_cffi.facts.process_maps import mapped_libraries_named

Generation = Literal["packed-func", "tvm-ffi", "bridge-protocol"]

#: Exported by every library of the PackedFunc generation's runtime (c_runtime_api.h).
PACKED_FUNC_SYMBOL = "TVMFuncCall"
#: Symbols an exported module of the PackedFunc generation defines (codegen's module context).
_PACKED_FUNC_EXPORTS = ("__tvm_main__", "__TVMAPISetLastError", "__tvm_module_ctx")
#: Prefix of the functions an exported module of the tvm-ffi generation defines.
_TVMFFI_EXPORT_PREFIX = "__tvm_ffi_"
#: The factory a protocol kernel library exports (see load_c_kernel).
PROTOCOL_FACTORY = "bridge_kernel_create"


def library_exports(path: str | os.PathLike[str], name: str) -> bool:
    """Whether the library already loaded at ``path`` exports ``name`` (dlsym, no new load)."""
    try:
        library = ctypes.CDLL(os.fspath(path), mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
    except OSError:
        return False
    return hasattr(library, name)


def packed_func_runtime_of(obj: object) -> str | None:
    """Path of the PackedFunc-generation runtime ``obj``'s TVM package loaded, or None.

    The package is the top-level module ``obj``'s class comes from (``tvm`` for hhb-tvm's
    ``tvm.runtime.Module``); its ``_ffi.base._LIB`` is the library TVM's own ctypes layer
    calls, which must export ``TVMFuncCall``.
    """
    package = sys.modules.get(type(obj).__module__.split(".")[0])
    base = getattr(getattr(package, "_ffi", None), "base", None)
    library = getattr(base, "_LIB", None)
    path = getattr(library, "_name", None)
    if not isinstance(path, str) or not hasattr(library, PACKED_FUNC_SYMBOL):
        return None
    return path


def packed_func_kind(obj: object) -> Literal["function", "module"] | None:
    """``"function"`` for a PackedFunc, ``"module"`` for a runtime Module of the PackedFunc
    generation, else None (objects of the tvm-ffi generation included).
    """
    handle = getattr(obj, "handle", None)
    if not isinstance(handle, ctypes.c_void_p) or packed_func_runtime_of(obj) is None:
        return None
    names = {cls.__name__ for cls in type(obj).__mro__}
    if names & {"PackedFunc", "PackedFuncBase"}:
        return "function"
    if "Module" in names and hasattr(obj, "entry_name"):
        return "module"
    return None


def _defined_dynamic_symbols(path: Path) -> set[str]:
    with path.open("rb") as stream:
        elf = ELFFile(stream)
        table = elf.get_section_by_name(".dynsym")
        if not isinstance(table, SymbolTableSection):
            return set()
        return {
            symbol.name
            for symbol in table.iter_symbols()
            if symbol.name and symbol["st_shndx"] != "SHN_UNDEF"
        }


def exported_library_generation(path: str | os.PathLike[str]) -> Generation | None:
    """What the shared library at ``path`` is, read from its ELF exports without loading it:
    a TVM module of either generation (``export_library``), a protocol kernel library, or None
    for anything else. Raises OSError/ELFError for a file that is missing or not ELF.
    """
    defined = _defined_dynamic_symbols(Path(path))
    if PROTOCOL_FACTORY in defined:
        return "bridge-protocol"
    if any(name.startswith(_TVMFFI_EXPORT_PREFIX) for name in defined):
        return "tvm-ffi"
    if defined.intersection(_PACKED_FUNC_EXPORTS):
        return "packed-func"
    return None


def mapped_packed_func_runtime() -> str | None:
    """A loaded libtvm / libtvm_runtime of the PackedFunc generation, if the process has one."""
    for path in mapped_libraries_named("libtvm", "libtvm_runtime"):
        if library_exports(path, PACKED_FUNC_SYMBOL):
            return path
    return None


def mapped_tvmffi_runtime() -> str | None:
    """A loaded libtvm_runtime / libtvm of the tvm-ffi generation (it links libtvm_ffi and
    exports no TVMFuncCall), if the process has one.
    """
    for path in mapped_libraries_named("libtvm", "libtvm_runtime"):
        if not library_exports(path, PACKED_FUNC_SYMBOL):
            return path
    return None


__all__ = [
    "ELFError",
    "Generation",
    "exported_library_generation",
    "library_exports",
    "mapped_packed_func_runtime",
    "mapped_tvmffi_runtime",
    "packed_func_kind",
    "packed_func_runtime_of",
]
