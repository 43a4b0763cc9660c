"""What the bridge needs from the libraries it binds: one place, read by the bridge and the probe.

Pure Python with no native imports, so the probe can use it even when the bridge's extension
cannot be built or loaded. The symbol lists are read from csrc/runtime/symbols.def, the table the C
side's bind lists are generated from, so the probe and the bridge require the same symbols.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from packaging.version import Version

#: Where the one symbol table lives: the copy an installed package carries (setup.py's build_py
#: puts csrc/runtime/symbols.def there), else the source tree's (a checkout or an editable install).
_TABLE_CANDIDATES = (
    Path(__file__).with_name("symbols.def"),
    Path(__file__).resolve().parent.parent / "csrc" / "runtime" / "symbols.def",
)

_ENTRY = re.compile(
    r'BRIDGE_SYMBOL\((\w+), (\w+), (REQUIRED|OPTIONAL|PROBED), "([^"]*)", "([^"]*)"\)'
)

REQUIRED, OPTIONAL, PROBED = "REQUIRED", "OPTIONAL", "PROBED"


@dataclass(frozen=True)
class Symbol:
    """One entry of csrc/runtime/symbols.def (its header says what each field means)."""

    library: str
    name: str
    kind: str
    since: str
    why: str


def read_symbol_table(path: Path | None = None) -> tuple[Symbol, ...]:
    """The entries of symbols.def, in its order (the order of the C side's capability bits)."""
    if path is None:
        path = next((p for p in _TABLE_CANDIDATES if p.is_file()), None)
        if path is None:
            raise FileNotFoundError(
                "symbols.def is neither in the abi_checks package nor in the source tree "
                f"({', '.join(map(str, _TABLE_CANDIDATES))}); reinstall bridge_cffi"
            )
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.startswith("BRIDGE_SYMBOL("):
            continue
        match = _ENTRY.fullmatch(line.strip())
        if match is None:
            raise ValueError(f"{path}:{number}: not a BRIDGE_SYMBOL(...) entry: {line!r}")
        entries.append(Symbol(*match.groups()))
    return tuple(entries)


#: Every C symbol the bridge binds or the probe reports, one table with the C side.
SYMBOLS: tuple[Symbol, ...] = read_symbol_table()


def symbols_of(library: str, kind: str) -> tuple[str, ...]:
    """Names of `library`'s entries of `kind`; OPTIONAL includes PROBED (the probe reports
    both, and neither blocks)."""
    kinds = (OPTIONAL, PROBED) if kind == OPTIONAL else (kind,)
    return tuple(s.name for s in SYMBOLS if s.library == library and s.kind in kinds)


def symbol(name: str) -> Symbol:
    """The table's entry for `name` (KeyError if the table has none)."""
    for entry in SYMBOLS:
        if entry.name == name:
            return entry
    raise KeyError(name)


#: MXNet C symbols without which the bridge cannot push work to the engine at all.
MXNET_REQUIRED_SYMBOLS = symbols_of("mxnet", REQUIRED)
#: MXNet C symbols the bridge uses when present; their absence degrades a feature.
MXNET_OPTIONAL_SYMBOLS = symbols_of("mxnet", OPTIONAL)
#: tvm-ffi C symbols needed to call a tvm-ffi Function from C.
TVMFFI_REQUIRED_SYMBOLS = symbols_of("tvmffi", REQUIRED)
#: tvm-ffi C symbols for the GPU path (stream hand-over) and the report.
TVMFFI_OPTIONAL_SYMBOLS = symbols_of("tvmffi", OPTIONAL)
#: C symbols of the PackedFunc generation's runtime (TVM < 0.20, c_runtime_api.h) that the
#: PackedFunc producer needs, and those it uses when present.
TVM_PACKED_FUNC_REQUIRED_SYMBOLS = symbols_of("tvm_packed_func", REQUIRED)
TVM_PACKED_FUNC_OPTIONAL_SYMBOLS = symbols_of("tvm_packed_func", OPTIONAL)


def what_is_degraded(missing: list[str]) -> str:
    """Missing optional symbols, each with what its absence costs (the table's "why")."""
    return ", ".join(f"{name} ({symbol(name).why})" for name in missing)


def capabilities(bound_mask: int) -> dict[str, bool]:
    """Which OPTIONAL symbols the bridge found, from its capability bits
    (``bridge_symbols_bound()``: bit i is entry i of the table)."""
    return {
        s.name: bool(bound_mask >> i & 1) for i, s in enumerate(SYMBOLS) if s.kind == OPTIONAL
    }


#: The two TVM generations, told apart by what a TVM library exports and links, never by its
#: version string (third-party builds such as hhb-tvm 3.2.3 carry their own).
PACKED_FUNC_GENERATION = "packed-func"
TVMFFI_GENERATION = "tvm-ffi"


def tvm_generation(exports_function_call: bool, needed: list[str]) -> str | None:
    """``packed-func`` for a TVM library exporting TVMFuncCall, ``tvm-ffi`` for one linking
    libtvm_ffi.so, else None (not a TVM runtime library)."""
    if exports_function_call:
        return PACKED_FUNC_GENERATION
    if "libtvm_ffi.so" in needed:
        return TVMFFI_GENERATION
    return None


#: libstdc++ function the engine callback calls to raise an error inside MXNet's engine
#: (DESIGN §4). Without it, errors are recorded and raised at the next bridged call.
ENGINE_THROW_SYMBOL = "_ZSt21__throw_runtime_errorPKc"

#: The legacy C++ bridge exported by MXNet builds up to 1.9.x.
LEGACY_BRIDGE_SYMBOL = "MXTVMBridge"

MIN_MXNET_VERSION = Version("1.5.1")

MXNET_TOO_OLD_REASON = (
    "MXNet {found} is not supported: the engine push C API first appeared in 1.5.0, and "
    "1.5.0's MXEnginePushSyncND takes NDArrayHandle instead of NDArrayHandle* (MXNet issue "
    "#15774), so a bridge built for the fixed signature would pass garbage. Install "
    "mxnet>=1.5.1 (for example `pip install mxnet==1.9.1 'numpy<1.24'`)."
)


def decode_mxnet_version(code: int) -> Version:
    """Turn MXGetVersion's integer (major*10000 + minor*100 + patch) into a Version."""
    major, rest = divmod(int(code), 10000)
    minor, patch = divmod(rest, 100)
    return Version(f"{major}.{minor}.{patch}")


def mxnet_version_problem(version: Version) -> str | None:
    """Return why this MXNet version cannot host the bridge, or None if it can."""
    if version.release < MIN_MXNET_VERSION.release:
        return MXNET_TOO_OLD_REASON.format(found=version)
    return None


# --- Facts used by the probe's verdicts (appended for abi_checks) ---------------------------

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


#: The extension-library interface (include/mxnet/lib_api.h) the extension implements, and the
#: MXNet releases that have it (1.7 has version 7, 1.8 version 10, 1.9.x version 11).
EXTENSION_LIBRARY_VERSION = 11
EXTENSION_LIBRARY_MXNET = (Version("1.9"), Version("1.10"))
CUSTOM_OP_ROUTE, EXTENSION_LIBRARY_ROUTE = "custom_op", "extension_library"


def operator_route(version: Version) -> str:
    """How bridge_cffi.register_op reaches MXNet ``version``: as a native operator of an
    extension library where MXNet implements the interface the extension does, else through
    MXCustomOpRegister."""
    low, high = EXTENSION_LIBRARY_MXNET
    return EXTENSION_LIBRARY_ROUTE if low <= version < high else CUSTOM_OP_ROUTE
