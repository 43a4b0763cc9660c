"""Gather Facts: find the libraries, run the child, read the chosen copies statically."""

from __future__ import annotations

import logging
import os

from abi_checks import dynamic, finder, ldcache, legacy_trial
from abi_checks.elf_static import ElfReadError, newest_versions, read_elf
from abi_checks.facts import DynamicFacts, Facts, LibraryCopy, LibraryFacts
from abi_checks.static_probe import probe_file

log = logging.getLogger(__name__)

#: Libraries each role's package loads with RTLD_GLOBAL before it (tvm loads libtvm_ffi.so
#: first; libtvm_runtime.so's RUNPATH=$ORIGIN alone would not find it in tvm_ffi/lib).
_PRELOADS: dict[str, tuple[str, ...]] = {
    "tvm_runtime": ("tvm_ffi",),
    "tvm_compiler": ("tvm_ffi", "tvm_runtime"),
    "tvm": ("tvm_ffi", "tvm_runtime"),
}


def _choose(copies: list[LibraryCopy]) -> str | None:
    for flag in ("mapped", "predicted"):
        for copy in copies:
            if getattr(copy, flag):
                return copy.path
    return copies[0].path if copies else None


def system_facts() -> dict[str, str | None]:
    """Where this system's libc and libstdc++ are and the newest versions they define."""
    # Every key is always present (None when unknown): the JSON schema promises them.
    result: dict[str, str | None] = dict.fromkeys(
        ("libc_path", "glibc", "libstdcxx_path", "glibcxx", "cxxabi")
    )
    for key, soname in (("libc", "libc.so.6"), ("libstdcxx", "libstdc++.so.6")):
        path = ldcache.system_library(soname)
        result[f"{key}_path"] = path
        if path is None:
            continue
        try:
            newest = newest_versions(read_elf(path).version_definitions)
        except ElfReadError as exc:
            log.warning("%s", exc)
            continue
        for family, version in newest.items():
            if family.lower() in result:
                result[family.lower()] = version
    return result


def collect(run_dynamic: bool = True, timeout_s: float = dynamic.DEFAULT_TIMEOUT_S) -> Facts:
    """Collect every fact the verdicts use, for the libraries this Python would load."""
    facts = Facts(system=system_facts())
    facts.dynamic = dynamic.run_child(timeout_s) if run_dynamic else None
    mapped = facts.dynamic.mapped_libraries if facts.dynamic else []
    for target in finder.TARGETS:
        copies = finder.mark_mapped(finder.find_copies(target), mapped, target.filename)
        if not copies and target.role == "tvm":
            continue  # libtvm.so is only present in older or source builds
        chosen = _choose(copies)
        facts.libraries[target.role] = LibraryFacts(
            role=target.role,
            name=target.filename,
            path=chosen,
            # The installed distribution's version describes only the copy it ships.
            package_version=(
                finder.package_version(target.distributions)
                if _from_package(copies, chosen)
                else None
            ),
            copies=copies,
        )
    bridge = finder.find_bridge_extension()
    bridge_name = os.path.basename(bridge[0].path) if bridge else "bridge_cffi/_native*.so"
    bridge = finder.mark_mapped(bridge, mapped, bridge_name)
    facts.libraries["bridge_extension"] = LibraryFacts(
        role="bridge_extension", name=bridge_name, path=_choose(bridge), copies=bridge
    )
    _fill_versions(facts, facts.dynamic)
    _probe_static(facts)
    _try_legacy_bridge(facts)
    return facts


def _try_legacy_bridge(facts: Facts) -> None:
    """Run MXTVMBridge's trial when it could apply: an importable TVM of the PackedFunc
    generation and an MXNet exporting MXTVMBridge.
    """
    dyn = facts.dynamic
    mxnet = facts.libraries.get("mxnet")
    if dyn is None or not dyn.tvm_version or mxnet is None or mxnet.static is None:
        return
    if mxnet.static.exports_legacy_bridge and facts.tvm_generation() == "packed-func":
        dyn.legacy_bridge_trial = legacy_trial.run_trial()


def _from_package(copies: list[LibraryCopy], chosen: str | None) -> bool:
    """Whether the chosen copy is one its package ships (not one an env var pointed at)."""
    return any(
        copy.path == chosen and {"package", "package-dev"} & set(copy.sources) for copy in copies
    )


#: Variables that make a package load a library from elsewhere than itself.
_OVERRIDE_VARIABLES = ("MXNET_LIBRARY_PATH", "TVM_LIBRARY_PATH")


def _override_remedy(lib: LibraryFacts) -> None:
    """A copy chosen because a variable points at it, that is not a usable library of its
    role: say so, and to unset the variable.
    """
    s = lib.static
    if s is None or (s.loadable and not s.required_symbols_missing):
        return
    chosen = next((c for c in lib.copies if c.path == lib.path), None)
    variables = [v for v in _OVERRIDE_VARIABLES if chosen is not None and v in chosen.sources]
    if not variables:
        return
    own = next((c.path for c in lib.copies if {"package", "package-dev"} & set(c.sources)), None)
    then = f"; the package's own copy is {own}" if own else ""
    s.problems.insert(0, f"{variables[0]} points at {lib.path}, which is not a usable {lib.name}")
    s.remedies.insert(0, f"unset {variables[0]} (or point it at a real {lib.name}){then}")


def _fill_versions(facts: Facts, dyn: DynamicFacts | None) -> None:
    if dyn is None:
        return
    mx = facts.libraries.get("mxnet")
    # MXGetVersion answered in the child: the version of the library actually loaded.
    if mx and dyn.mxnet_version and dyn.mxnet_version_code is not None:
        mx.package_version = dyn.mxnet_version


def _probe_static(facts: Facts) -> None:
    tvm_version = (facts.libraries.get("tvm_runtime") or LibraryFacts("", "", None)).package_version
    for role, lib in facts.libraries.items():
        if lib.path is None:
            lib.error = f"{lib.name} not found"
            continue
        preloaded: dict[str, str] = {}
        for dep_role in _PRELOADS.get(role, ()):
            dep = facts.libraries.get(dep_role)
            if dep and dep.path:
                preloaded[dep.name] = dep.path
        try:
            lib.static = probe_file(lib.path, role, preloaded, tvm_version)
        except ElfReadError as exc:
            lib.error = str(exc)
            continue
        _override_remedy(lib)
