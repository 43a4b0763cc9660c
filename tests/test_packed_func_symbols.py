"""The PackedFunc producer's symbols: the probe's list and the C table are the same list."""

from __future__ import annotations

import re

from conftest import REPO

from abi_checks import requirements

_BIND = re.compile(r"BRIDGE_BIND\(table, library, (\w+), (true|false)\);")


def test_c_table_binds_exactly_the_probes_required_and_optional_symbols() -> None:
    source = (REPO / "csrc" / "symbols_tvm_legacy.c").read_text()
    bound = _BIND.findall(source)
    assert [name for name, required in bound if required == "true"] == list(
        requirements.TVM_PACKED_FUNC_REQUIRED_SYMBOLS
    )
    assert [name for name, required in bound if required == "false"] == list(
        requirements.TVM_PACKED_FUNC_OPTIONAL_SYMBOLS
    )


def test_generation_is_read_from_exports_and_links() -> None:
    assert requirements.tvm_generation(True, ["libstdc++.so.6"]) == "packed-func"
    assert requirements.tvm_generation(False, ["libtvm_ffi.so", "libc.so.6"]) == "tvm-ffi"
    assert requirements.tvm_generation(False, ["libc.so.6"]) is None
