"""Cheap checks the bridge calls at import time, in-process (no child, no dependency walk).

`check_bridge` (and `bridge_blockers`, its list of blockers) covers: the MXNet version
(>= 1.5.1, from MXGetVersion's code), the required MXNet C symbols (read from libmxnet.so's
dynamic symbol table, ~0.15 s for the 150 MB pip build, cached per file) and, when given, the
required tvm-ffi symbols. It does not cover loadability (the libraries are already loaded),
the layout self-tests or the throw symbol: the bridge checks those itself (dlsym) or the full
probe does (`python -m abi_checks`).

A file this module cannot read is never a blocker: the process has already loaded it, so
the loader could, and refusing to run because our reader failed would be our bug, not the
user's. It is a warning instead (`BridgeCheck.warnings`; `bridge_blockers` logs it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from abi_checks import requirements
from abi_checks.elf_static import ElfReadError, read_elf
from abi_checks.facts import Compiler, Facts, LibraryFacts, StaticFacts
from abi_checks.static_probe import SYMBOL_SETS
from abi_checks.verdicts import blocking_reasons

log = logging.getLogger(__name__)


@dataclass
class BridgeCheck:
    """Outcome of `check_bridge`."""

    #: why the bridge cannot work with these libraries; empty = it can
    blockers: list[str] = field(default_factory=list)
    #: what could not be checked (a library whose ELF file could not be read); never blocks
    warnings: list[str] = field(default_factory=list)


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
        read_from=info.read_from,
        read_notes=list(info.read_notes),
    )
    return lib


def check_bridge(
    mxnet_lib_path: str, mxnet_version_code: int, tvm_ffi_lib_path: str | None = None
) -> BridgeCheck:
    """Blockers and warnings for this (already loaded) MXNet and, if given, tvm-ffi.

    `mxnet_version_code` is MXGetVersion's integer (10901 for 1.9.1). Same rules as the
    probe's bridge-async verdict (blockers and unsafe findings), minus what needs a child
    process. A library whose file cannot be read gives a warning, never a blocker.
    """
    facts = Facts()
    facts.libraries["mxnet"] = _loaded_library_facts("mxnet", mxnet_lib_path)
    lib = facts.libraries["mxnet"]
    lib.package_version = str(requirements.decode_mxnet_version(mxnet_version_code))
    if tvm_ffi_lib_path is not None:
        facts.libraries["tvm_ffi"] = _loaded_library_facts("tvm_ffi", tvm_ffi_lib_path)
    result = BridgeCheck(blocking_reasons(facts, require_tvm_ffi=tvm_ffi_lib_path is not None))
    for loaded in facts.libraries.values():
        if loaded.error:
            result.warnings.append(
                f"required {loaded.role} C symbols not checked, the library cannot be read: "
                f"{loaded.error} (run `python -m abi_checks` for the full report)"
            )
    return result


def bridge_blockers(
    mxnet_lib_path: str, mxnet_version_code: int, tvm_ffi_lib_path: str | None = None
) -> list[str]:
    """Reasons the bridge cannot work with this (already loaded) MXNet; empty list = fine.

    `check_bridge(...).blockers`; its warnings (files that could not be read, which never
    block) are logged with `logging.warning` on this module's logger.
    """
    result = check_bridge(mxnet_lib_path, mxnet_version_code, tvm_ffi_lib_path)
    for warning in result.warnings:
        log.warning("%s", warning)
    return result.blockers
