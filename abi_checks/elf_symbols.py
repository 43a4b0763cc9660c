"""Symbol versions: which names a library exports (under which version) and which it needs.

The version tables (.gnu.version_d, .gnu.version_r) are read with pyelftools'
GNUVerDefSection and GNUVerNeedSection. The two big tables, the dynamic symbols and their
version indices (.dynsym and .gnu.version: 65k entries each in libmxnet.so), are unpacked
with `struct` from the bytes of pyelftools' SymbolTableSection and GNUVerSymSection: their
per-symbol objects (iter_symbols) take 2.7 s and 3.1 s for libmxnet.so, measured with
pyelftools 0.33, against ~0.2 s for the whole read this way, and the bridge checks libmxnet.so
when it is imported.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection, GNUVerSymSection
from elftools.elf.sections import SymbolTableSection

from abi_checks.elf_info import UndefinedSymbol

#: pyelftools' elfclass of a 64-bit ELF file (32 for ELFCLASS32).
_ELFCLASS64_BITS = 64

# Symbol binding / visibility / section index values from the ELF specification.
_STB_GLOBAL, _STB_WEAK, _STB_GNU_UNIQUE = 1, 2, 10
_STV_DEFAULT, _STV_PROTECTED = 0, 3
_SHN_UNDEF = 0
_VERSYM_HIDDEN = 0x8000
_VER_FLG_BASE = 0x1


@dataclass
class SymbolVersions:
    """The version tables of one file; all empty when it has none (or they were unreadable)."""

    definitions: list[str] = field(default_factory=list)  # version names this file defines
    def_index: dict[int, str] = field(default_factory=dict)  # version index -> name
    needs: dict[str, list[str]] = field(default_factory=dict)  # soname -> version names
    need_index: dict[int, tuple[str, str]] = field(default_factory=dict)  # -> (name, soname)
    #: the version index of each dynamic symbol (.gnu.version), None without that table
    versyms: tuple[int, ...] | None = None


@dataclass
class SymbolSummary:
    """What ElfInfo says about the dynamic symbols."""

    default_exports: frozenset[str]
    versioned_exports: frozenset[tuple[str, str]]
    undefined: list[UndefinedSymbol]
    cxx11_symbols: int
    cpp_symbols: int


def read_symbol_versions(
    verdef: GNUVerDefSection | None,
    verneed: GNUVerNeedSection | None,
    versym: GNUVerSymSection | None,
    little_endian: bool,
) -> SymbolVersions:
    """Read all three version tables now (pyelftools reads lazily: a damaged one raises here)."""
    versions = SymbolVersions()
    if verdef is not None:
        for entry, aux_iter in verdef.iter_versions():
            aux = next(iter(aux_iter), None)
            if aux is None:
                continue
            # Index 1 is the file's own base version (its soname), not a symbol version.
            if entry["vd_flags"] & _VER_FLG_BASE:
                continue
            versions.definitions.append(aux.name)
            versions.def_index[entry["vd_ndx"]] = aux.name
    if verneed is not None:
        for entry, aux_iter in verneed.iter_versions():
            soname = str(entry.name)
            for aux in aux_iter:
                versions.needs.setdefault(soname, []).append(str(aux.name))
                versions.need_index[aux["vna_other"]] = (str(aux.name), soname)
    if versym is not None:
        raw = versym.data()
        order = "<" if little_endian else ">"
        versions.versyms = struct.unpack(f"{order}{len(raw) // 2}H", raw)
    return versions


def summarize_symbols(
    symbols: SymbolTableSection | None, versions: SymbolVersions, little_endian: bool
) -> SymbolSummary:
    """Sort the dynamic symbols into default exports, versioned exports and undefined ones."""
    default_exports: set[str] = set()
    versioned_exports: set[tuple[str, str]] = set()
    undefined: list[UndefinedSymbol] = []
    cxx11 = cpp = 0
    for name, info, other, shndx, versym in _dynamic_symbols(symbols, versions, little_endian):
        if name.startswith("_Z"):
            cpp += 1
            if "__cxx11" in name:
                cxx11 += 1
        bind = info >> 4
        if bind not in (_STB_GLOBAL, _STB_WEAK, _STB_GNU_UNIQUE):
            continue
        ver_index = versym & 0x7FFF if versym is not None else 1
        if shndx == _SHN_UNDEF:
            version, vfile = versions.need_index.get(ver_index, (None, None))
            undefined.append(UndefinedSymbol(name, version, vfile, bind == _STB_WEAK))
            continue
        if (other & 0x3) not in (_STV_DEFAULT, _STV_PROTECTED) or ver_index == 0:
            continue
        version = versions.def_index.get(ver_index)
        if version is not None:
            versioned_exports.add((name, version))
        if versym is None or not versym & _VERSYM_HIDDEN:
            default_exports.add(name)
    return SymbolSummary(
        frozenset(default_exports), frozenset(versioned_exports), undefined, cxx11, cpp
    )


def _c_string(table: bytes, offset: int) -> str:
    stop = table.find(b"\0", offset)
    return table[offset : stop if stop >= 0 else len(table)].decode("utf-8", "replace")


def _dynamic_symbols(
    symbols: SymbolTableSection | None, versions: SymbolVersions, little_endian: bool
) -> Iterator[tuple[str, int, int, int, int | None]]:
    """Yield (name, st_info, st_other, st_shndx, versym or None) for each dynamic symbol."""
    if symbols is None:
        return
    # Elf64_Sym: st_name (I), st_info, st_other (B), st_shndx (H), st_value, st_size (Q);
    # Elf32_Sym: st_name, st_value, st_size (I), st_info, st_other (B), st_shndx (H).
    end = "<" if little_endian else ">"
    if symbols.elffile.elfclass == _ELFCLASS64_BITS:
        fmt, name_i, info_i, other_i, shndx_i = end + "IBBHQQ", 0, 1, 2, 3
    else:
        fmt, name_i, info_i, other_i, shndx_i = end + "IIIBBH", 0, 3, 4, 5
    entry_size = struct.calcsize(fmt)
    data, strtab, versyms = symbols.data(), symbols.stringtable.data(), versions.versyms
    usable = len(data) - len(data) % entry_size
    for i, entry in enumerate(struct.iter_unpack(fmt, data[:usable])):
        if i == 0:  # the null symbol
            continue
        name = _c_string(strtab, entry[name_i])
        versym = versyms[i] if versyms is not None and i < len(versyms) else None
        yield name, entry[info_i], entry[other_i], entry[shndx_i], versym
