"""What the ELF reader returns: the static facts of one file, and the error it raises."""

from __future__ import annotations

from dataclasses import dataclass, field

#: ElfInfo.read_from values
FROM_SECTIONS = "sections"
FROM_PROGRAM_HEADERS = "program-headers"


class ElfReadError(Exception):
    """The file is missing, unreadable, or not an ELF shared object; the message is one line."""


@dataclass(frozen=True)
class UndefinedSymbol:
    """A symbol the library needs from somewhere else."""

    name: str
    version: str | None  # e.g. "GLIBCXX_3.4.21"; None for unversioned references
    version_file: str | None  # the DT_NEEDED soname the version is expected from
    weak: bool  # a weak reference may stay unresolved: the loader sets it to NULL


@dataclass
class ElfInfo:
    """Static facts about one ELF file (see abi_checks.elf_static for how they are read)."""

    path: str
    elf_class: int  # 32 or 64
    machine: str
    soname: str | None
    needed: list[str]
    rpath: list[str]
    runpath: list[str]
    comments: list[str]
    #: names exported under their default version (or unversioned): what an unversioned
    #: reference and dlsym() can bind to
    default_exports: frozenset[str]
    #: (name, version) for every exported versioned definition, hidden ones included
    versioned_exports: frozenset[tuple[str, str]]
    undefined: list[UndefinedSymbol]
    #: version names this file defines (.gnu.version_d), e.g. GLIBCXX_3.4.30
    version_definitions: list[str]
    #: soname -> version names needed from it (.gnu.version_r)
    version_needs: dict[str, list[str]]
    cxx11_symbols: int  # mangled names containing "__cxx11" (C++11 std::string ABI)
    cpp_symbols: int  # mangled C++ names (starting with _Z)
    has_version_info: bool = field(default=False)
    #: FROM_SECTIONS, or FROM_PROGRAM_HEADERS when the section header table was unusable
    read_from: str = FROM_SECTIONS
    #: why the program headers were used and what that left unknown (empty from sections)
    read_notes: list[str] = field(default_factory=list)

    def exports(self, name: str) -> bool:
        """True if `name` is exported under its default version (what dlsym would find)."""
        return name in self.default_exports

    def provides(self, name: str, version: str | None) -> bool:
        """True if a reference to `name` (at `version`) binds to this library."""
        if version is None:
            return name in self.default_exports
        if (name, version) in self.versioned_exports:
            return True
        # A definition without any version information satisfies a versioned reference.
        return not self.has_version_info and name in self.default_exports
