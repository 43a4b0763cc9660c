"""What the bridge needs from the libraries it binds, as the probe reads it.

A thin module: the symbol table reader and the version rules live in ``bridge_cffi.facts``
(pure Python, no native imports; shared with the bridge, which must not import the probe) and
are re-exported here under their old names, so the rest of abi_checks reads them from one
place. What stays defined here are the probe-only facts below the re-exports.
"""

from __future__ import annotations

from packaging.version import Version

from bridge_cffi.facts.symbols import (
    MXNET_OPTIONAL_SYMBOLS,
    MXNET_REQUIRED_SYMBOLS,
    OPTIONAL,
    PROBED,
    REQUIRED,
    SYMBOLS,
    TVM_PACKED_FUNC_OPTIONAL_SYMBOLS,
    TVM_PACKED_FUNC_REQUIRED_SYMBOLS,
    TVMFFI_OPTIONAL_SYMBOLS,
    TVMFFI_REQUIRED_SYMBOLS,
    Symbol,
    capabilities,
    read_symbol_table,
    symbol,
    symbols_of,
    what_is_degraded,
)
from bridge_cffi.facts.versions import (
    CUSTOM_OP_ROUTE,
    EXTENSION_LIBRARY_MXNET,
    EXTENSION_LIBRARY_ROUTE,
    EXTENSION_LIBRARY_VERSION,
    MIN_MXNET_VERSION,
    MXNET_TOO_OLD_REASON,
    PACKED_FUNC_GENERATION,
    TVMFFI_GENERATION,
    decode_mxnet_version,
    mxnet_version_problem,
    operator_route,
    tvm_generation,
)

#: libstdc++ function the engine callback calls to raise an error inside MXNet's engine
#: (DESIGN §4). Without it, errors are recorded and raised at the next bridged call.
ENGINE_THROW_SYMBOL = "_ZSt21__throw_runtime_errorPKc"

#: The legacy C++ bridge exported by MXNet builds up to 1.9.x.
LEGACY_BRIDGE_SYMBOL = "MXTVMBridge"

#: First TVM release whose functions use the tvm-ffi ABI (TVMFFIAny, libtvm_ffi.so) instead of
#: the PackedFunc ABI that MXNet's legacy MXTVMBridge was compiled against.
TVM_FFI_FIRST_VERSION = Version("0.20")

#: Mangled-name prefix and C-name prefix of tvm-ffi symbols: an unresolved one means TVM and
#: apache-tvm-ffi come from different builds.
TVMFFI_CPP_SYMBOL_PREFIX = "_ZN3tvm3ffi"
TVMFFI_C_SYMBOL_PREFIX = "TVMFFI"

#: apache-tvm releases whose declared apache-tvm-ffi range is too wide, with the tvm-ffi
#: version they were built against (DESIGN §6: apache-tvm 0.25.0 needs a symbol that
#: apache-tvm-ffi >= 0.1.13 no longer exports).
KNOWN_TVM_FFI_PINS: dict[str, str] = {"0.25.0": "0.1.12"}

#: Measured on MXNet 1.9.1 + TVM 0.27 (DESIGN §6).
LEGACY_BRIDGE_MEASURED = (
    "measured with MXNet 1.9.1 and TVM 0.27: MXTVMBridge handed a TVM function handle returns 0 "
    "and never calls the function (silent undefined behaviour, not even a crash)"
)

__all__ = [
    "CUSTOM_OP_ROUTE",
    "ENGINE_THROW_SYMBOL",
    "EXTENSION_LIBRARY_MXNET",
    "EXTENSION_LIBRARY_ROUTE",
    "EXTENSION_LIBRARY_VERSION",
    "KNOWN_TVM_FFI_PINS",
    "LEGACY_BRIDGE_MEASURED",
    "LEGACY_BRIDGE_SYMBOL",
    "MIN_MXNET_VERSION",
    "MXNET_OPTIONAL_SYMBOLS",
    "MXNET_REQUIRED_SYMBOLS",
    "MXNET_TOO_OLD_REASON",
    "OPTIONAL",
    "PACKED_FUNC_GENERATION",
    "PROBED",
    "REQUIRED",
    "SYMBOLS",
    "TVMFFI_CPP_SYMBOL_PREFIX",
    "TVMFFI_C_SYMBOL_PREFIX",
    "TVMFFI_GENERATION",
    "TVMFFI_OPTIONAL_SYMBOLS",
    "TVMFFI_REQUIRED_SYMBOLS",
    "TVM_FFI_FIRST_VERSION",
    "TVM_PACKED_FUNC_OPTIONAL_SYMBOLS",
    "TVM_PACKED_FUNC_REQUIRED_SYMBOLS",
    "Symbol",
    "capabilities",
    "decode_mxnet_version",
    "mxnet_version_problem",
    "operator_route",
    "read_symbol_table",
    "symbol",
    "symbols_of",
    "tvm_generation",
    "what_is_degraded",
]
