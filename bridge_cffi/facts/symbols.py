"""The one table of library symbols (csrc/runtime/symbols.def), read for the bridge and the probe.

The C side's bind lists are generated from the same file, so the probe reports and the
bridge requires the same symbols; optional ones become capability flags.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

#: The directory holding the bridge_cffi package (site-packages, or a checkout).
_ROOT = Path(__file__).resolve().parent.parent.parent


def _probe_directories() -> list[Path]:
    """Where the abi_checks package is, found without importing it (it may be installed apart
    from bridge_cffi, or be the probe of a bridge that cannot import).
    """
    spec = importlib.util.find_spec("abi_checks")
    return [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []


def _table_candidates() -> tuple[Path, ...]:
    """Where the one symbol table may live, in order: the copy an installed package carries
    (setup.py's build_py puts csrc/runtime/symbols.def beside the probe, as
    abi_checks/symbols.def), else the source tree's (a checkout or an editable install), at
    csrc/runtime/.
    """
    probe = _probe_directories()
    trees = [d.parent for d in probe] + [_ROOT]
    found = [d / "symbols.def" for d in probe] + [_ROOT / "abi_checks" / "symbols.def"]
    found.extend(tree / "csrc" / "runtime" / "symbols.def" for tree in trees)
    return tuple(dict.fromkeys(found))


_TABLE_CANDIDATES = _table_candidates()

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
                "symbols.def is neither beside the abi_checks package nor in the source tree "
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
    both, and neither blocks).
    """
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
    (``bridge_symbols_bound()``: bit i is entry i of the table).
    """
    return {
        s.name: bool(bound_mask >> i & 1) for i, s in enumerate(SYMBOLS) if s.kind == OPTIONAL
    }
