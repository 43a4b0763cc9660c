"""Predict, from ELF facts alone, whether the dynamic loader could load a library.

Mirrors glibc's loader: DT_NEEDED entries are matched first against libraries already loaded
(by soname), then searched in DT_RPATH (only when there is no DT_RUNPATH), LD_LIBRARY_PATH,
DT_RUNPATH (with $ORIGIN expanded to the requesting file's directory), the ldconfig cache and
the default directories; the tree is walked breadth-first. Every non-weak undefined symbol
must then be exported by some library in the scope (the tree, libraries the caller says are
already loaded, and the Python executable), and every needed symbol version must be defined
by the library it is expected from.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from dataclasses import dataclass, field

from abi_checks import ldcache
from abi_checks.elf_static import ElfInfo, ElfReadError, read_elf


@dataclass(frozen=True)
class Dependency:
    """One DT_NEEDED entry and where the loader would find it (path None: nowhere)."""

    soname: str
    needed_by: str
    path: str | None
    how: str  # already-loaded, preloaded, rpath, LD_LIBRARY_PATH, runpath, ldconfig, default-dir


@dataclass(frozen=True)
class MissingSymbol:
    """A non-weak undefined symbol that no library in the scope exports."""

    name: str
    version: str | None
    needed_by: str


@dataclass(frozen=True)
class MissingVersion:
    """A symbol version (e.g. GLIBCXX_3.4.30) the provider does not define."""

    version: str
    soname: str
    provider: str
    needed_by: str


@dataclass
class LoadCheck:
    """Result of check_load: the dependency tree and everything that would stop the loader."""

    root: str
    dependencies: list[Dependency] = field(default_factory=list)
    missing_symbols: list[MissingSymbol] = field(default_factory=list)
    missing_versions: list[MissingVersion] = field(default_factory=list)

    @property
    def missing_libraries(self) -> list[Dependency]:
        """DT_NEEDED entries the loader would not find."""
        return [d for d in self.dependencies if d.path is None]

    @property
    def loadable(self) -> bool:
        """True when nothing found would make dlopen fail."""
        return not (self.missing_libraries or self.missing_symbols or self.missing_versions)

    def provider_of(self, soname: str) -> str | None:
        """Path the tree resolved `soname` to, if any."""
        for dep in self.dependencies:
            if dep.soname == soname and dep.path is not None:
                return dep.path
        return None


def _compatible(info: ElfInfo, like: ElfInfo) -> bool:
    # The loader skips files of another class or machine and keeps searching.
    return info.elf_class == like.elf_class and info.machine == like.machine


def _search(soname: str, requester: ElfInfo, root: ElfInfo) -> tuple[str | None, str]:
    if "/" in soname:
        return (soname if os.path.isfile(soname) else None), "direct"
    origin = os.path.dirname(os.path.abspath(requester.path))
    candidates: list[tuple[str, str]] = []
    if not requester.runpath:
        candidates += [(ldcache.expand_origin(p, origin), "rpath") for p in requester.rpath]
        if requester is not root and not root.runpath:
            # The RPATH of the object that started the load applies to its dependencies too.
            root_origin = os.path.dirname(os.path.abspath(root.path))
            candidates += [(ldcache.expand_origin(p, root_origin), "rpath") for p in root.rpath]
    candidates += [(d, "LD_LIBRARY_PATH") for d in ldcache.ld_library_path()]
    candidates += [(ldcache.expand_origin(p, origin), "runpath") for p in requester.runpath]
    cached = ldcache.ldconfig_lookup(soname)
    if cached:
        candidates.append((os.path.dirname(cached), "ldconfig"))
    candidates += [(d, "default-dir") for d in ldcache.DEFAULT_DIRS]
    for directory, how in candidates:
        path = os.path.join(directory, soname)
        if not os.path.isfile(path):
            continue
        try:
            if _compatible(read_elf(path), requester):
                return path, how
        except ElfReadError:
            continue
    return None, "not-found"


def _walk(
    root: ElfInfo, preloaded: dict[str, str], dependencies: list[Dependency]
) -> tuple[list[ElfInfo], dict[str, ElfInfo]]:
    """Breadth-first walk of DT_NEEDED like the loader; returns the tree and soname index."""
    loaded: dict[str, ElfInfo] = {}
    for name in {root.soname, os.path.basename(root.path)} - {None}:
        loaded[str(name)] = root
    tree: list[ElfInfo] = [root]
    queue: deque[ElfInfo] = deque([root])
    while queue:
        lib = queue.popleft()
        for soname in lib.needed:
            if soname in loaded:
                dependencies.append(
                    Dependency(soname, lib.path, loaded[soname].path, "already-loaded")
                )
                continue
            found: str | None
            if soname in preloaded:
                found, how = preloaded[soname], "preloaded"
            else:
                found, how = _search(soname, lib, root)
            dependencies.append(Dependency(soname, lib.path, found, how))
            if found is None:
                continue
            try:
                info = read_elf(found)
            except ElfReadError:
                continue
            loaded[soname] = info
            if info.soname:
                loaded.setdefault(info.soname, info)
            tree.append(info)
            queue.append(info)
    return tree, loaded


_SCOPE_CACHE: dict[str, list[ElfInfo]] = {}


def _scope_of(path: str) -> list[ElfInfo]:
    """A library or executable and its whole dependency tree (cached: used for python)."""
    if path not in _SCOPE_CACHE:
        try:
            tree, _ = _walk(read_elf(path), {}, [])
        except ElfReadError:
            tree = []
        _SCOPE_CACHE[path] = tree
    return _SCOPE_CACHE[path]


def check_load(
    path: str,
    preloaded: dict[str, str] | None = None,
    extra_scope: list[str] | None = None,
) -> LoadCheck:
    """Walk `path`'s dependency tree and list what would stop it from loading.

    `preloaded` maps sonames to libraries the process has loaded before (e.g. tvm imports
    libtvm_ffi.so with RTLD_GLOBAL before libtvm_runtime.so); they satisfy DT_NEEDED entries
    and export symbols. `extra_scope` adds more exporters with their dependency trees
    (default: the Python executable, which with a shared libpython exports nothing itself).
    Raises ElfReadError if `path` itself cannot be read.
    """
    root = read_elf(path)
    result = LoadCheck(root=path)
    preloaded = dict(preloaded or {})
    tree, loaded = _walk(root, preloaded, result.dependencies)
    scope = list(tree)
    if extra_scope is None:
        extra_scope = [os.path.realpath(sys.executable)]
    for extra in list(preloaded.values()) + extra_scope:
        scope += _scope_of(extra)
    _check_versions(tree, loaded, result)
    _check_symbols(tree, scope, result)
    return result


def _check_versions(tree: list[ElfInfo], loaded: dict[str, ElfInfo], result: LoadCheck) -> None:
    for lib in tree:
        for soname, versions in lib.version_needs.items():
            provider = loaded.get(soname)
            if provider is None or not provider.has_version_info:
                continue  # missing library already reported; unversioned provider is accepted
            defined = set(provider.version_definitions)
            for version in versions:
                if version not in defined:
                    result.missing_versions.append(
                        MissingVersion(version, soname, provider.path, lib.path)
                    )


def _check_symbols(tree: list[ElfInfo], scope: list[ElfInfo], result: LoadCheck) -> None:
    # One pass to merge every exporter's tables, so each lookup is a set membership test.
    default_names: set[str] = set()
    versioned: set[tuple[str, str]] = set()
    unversioned_libs_names: set[str] = set()
    for lib in scope:
        default_names |= lib.default_exports
        versioned |= lib.versioned_exports
        if not lib.has_version_info:
            unversioned_libs_names |= lib.default_exports
    missing_versions = {(m.needed_by, m.version) for m in result.missing_versions}
    for lib in tree:
        for sym in lib.undefined:
            if sym.weak:
                continue
            if sym.version is None:
                ok = sym.name in default_names
            else:
                ok = (sym.name, sym.version) in versioned or sym.name in unversioned_libs_names
                if (lib.path, sym.version) in missing_versions:
                    continue  # already reported as a missing version
            if not ok:
                result.missing_symbols.append(MissingSymbol(sym.name, sym.version, lib.path))
