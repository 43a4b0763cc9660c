"""Cheap checks the bridge calls at import time, in-process (no child, no dependency walk).

`bridge_blockers` covers: the MXNet version (>= 1.5.1, from MXGetVersion's code), the
required MXNet C symbols (read from libmxnet.so's dynamic symbol table, ~0.15 s for the
150 MB pip build, cached per file) and, when given, the required tvm-ffi symbols. It does not
cover loadability (the libraries are already loaded), the layout self-tests or the throw
symbol: the bridge checks those itself (dlsym) or the full probe does (`python -m abi_checks`).
"""

from __future__ import annotations

from abi_checks import requirements
from abi_checks.elf_static import ElfReadError, read_elf
from abi_checks.facts import Compiler, Facts, LibraryFacts, StaticFacts
from abi_checks.static_probe import SYMBOL_SETS
from abi_checks.verdicts import blocking_reasons


def _loaded_library_facts(role: str, path: str) -> LibraryFacts:
    """Facts for a library the process has already loaded: only its exported symbols."""
    lib = LibraryFacts(role=role, name=path.rsplit("/", 1)[-1], path=path)
    try:
        info = read_elf(path)
    except ElfReadError as exc:
        lib.error = str(exc)
        return lib
    required, optional = SYMBOL_SETS[role]
    lib.static = StaticFacts(
        soname=info.soname,
        compiler=Compiler(None, None),
        string_abi="none",
        cxx11_symbols=info.cxx11_symbols,
        cpp_symbols=info.cpp_symbols,
        needed=list(info.needed),
        rpath=list(info.rpath),
        runpath=list(info.runpath),
        needs_newest={},
        system_provides_newest={},
        required_symbols_missing=[s for s in required if not info.exports(s)],
        optional_symbols_missing=[s for s in optional if not info.exports(s)],
        exports_legacy_bridge=info.exports(requirements.LEGACY_BRIDGE_SYMBOL),
        throw_symbol_in_tree=info.exports(requirements.ENGINE_THROW_SYMBOL),
        loadable=True,  # it is loaded: the process got this far
        dependencies=[],
        missing_libraries=[],
        missing_symbols=[],
        missing_versions=[],
        problems=[],
        remedies=[],
    )
    return lib


def bridge_blockers(
    mxnet_lib_path: str, mxnet_version_code: int, tvm_ffi_lib_path: str | None = None
) -> list[str]:
    """Reasons the bridge cannot work with this (already loaded) MXNet; empty list = fine.

    `mxnet_version_code` is MXGetVersion's integer (10901 for 1.9.1). Pass
    `tvm_ffi_lib_path` to check tvm-ffi's symbols too. Same rules as the probe's
    bridge-async verdict (blockers and unsafe findings), minus what needs a child process.
    """
    facts = Facts()
    facts.libraries["mxnet"] = _loaded_library_facts("mxnet", mxnet_lib_path)
    lib = facts.libraries["mxnet"]
    lib.package_version = str(requirements.decode_mxnet_version(mxnet_version_code))
    if tvm_ffi_lib_path is not None:
        facts.libraries["tvm_ffi"] = _loaded_library_facts("tvm_ffi", tvm_ffi_lib_path)
    reasons = blocking_reasons(facts, require_tvm_ffi=tvm_ffi_lib_path is not None)
    if lib.error:
        reasons.append(f"cannot read {mxnet_lib_path}: {lib.error}")
    return reasons
