"""One table of library symbols (csrc/runtime/symbols.def): the probe's lists and the C side's bind
lists are read from it, so they cannot disagree.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from abi_checks import requirements
from conftest import REPO

_ENTRY_LINE = re.compile(r"^BRIDGE_SYMBOL\(", re.MULTILINE)


def test_every_entry_of_the_table_is_read() -> None:
    text = (REPO / "csrc" / "runtime" / "symbols.def").read_text()
    assert len(requirements.SYMBOLS) == len(_ENTRY_LINE.findall(text))
    names = [s.name for s in requirements.SYMBOLS]
    assert len(names) == len(set(names))
    assert {s.library for s in requirements.SYMBOLS} == {"mxnet", "tvmffi", "tvm_packed_func",
                                                         "cuda"}
    assert all(s.since and s.why for s in requirements.SYMBOLS)


def test_no_c_file_binds_a_symbol_outside_the_table() -> None:
    sources = "".join(p.read_text() for p in (REPO / "csrc" / "runtime").glob("symbols_*.c"))
    assert "BRIDGE_BIND(" not in sources
    assert "bridge_bind_symbols(" in sources


def test_the_extension_binds_exactly_the_table() -> None:
    from bridge_cffi.native import ffi, lib

    count = lib.bridge_symbol_count()
    names = [ffi.string(lib.bridge_symbol_name(i)).decode() for i in range(count)]
    assert names == [s.name for s in requirements.SYMBOLS]
    assert lib.bridge_symbol_name(count) == ffi.NULL


def test_the_probe_requires_what_the_bridge_requires() -> None:
    # The finding of issue 15: MXNDArrayGetDType was bound as required but probed as optional.
    for name in ("MXNDArrayGetDType", "MXNDArrayDetach", "MXNDArrayFree", "MXNDArrayGetContext"):
        assert name in requirements.MXNET_REQUIRED_SYMBOLS
        assert name not in requirements.MXNET_OPTIONAL_SYMBOLS
    assert requirements.symbol("MXCustomOpRegister").kind == requirements.OPTIONAL


def test_a_malformed_entry_is_refused(tmp_path: Path) -> None:
    table = tmp_path / "symbols.def"
    table.write_text('BRIDGE_SYMBOL(mxnet, MXGetVersion, REQUIRED, "1.5.1")\n')
    with pytest.raises(ValueError, match=re.escape("symbols.def:1")):
        requirements.read_symbol_table(table)


def test_capability_flags_name_the_optional_symbols_found() -> None:
    mask = 0
    for i, entry in enumerate(requirements.SYMBOLS):
        if entry.name in ("MXCustomOpRegister", "TVMSetStream"):
            mask |= 1 << i
    found = requirements.capabilities(mask)
    assert set(found) == {s.name for s in requirements.SYMBOLS if s.kind == requirements.OPTIONAL}
    assert {name for name, present in found.items() if present} == {
        "MXCustomOpRegister",
        "TVMSetStream",
    }


def test_generation_is_read_from_exports_and_links() -> None:
    assert requirements.tvm_generation(True, ["libstdc++.so.6"]) == "packed-func"
    assert requirements.tvm_generation(False, ["libtvm_ffi.so", "libc.so.6"]) == "tvm-ffi"
    assert requirements.tvm_generation(False, ["libc.so.6"]) is None


def test_a_missing_optional_symbol_is_reported_with_what_it_costs() -> None:
    text = requirements.what_is_degraded(["MXCustomOpRegister", "TVMSetStream"])
    assert text == (
        f"MXCustomOpRegister ({requirements.symbol('MXCustomOpRegister').why}), "
        f"TVMSetStream ({requirements.symbol('TVMSetStream').why})"
    )
