"""Read what a shared library exports, needs and was built with, without ever loading it.

pyelftools locates the sections and decodes the small ones (dynamic tags, version needs and
definitions, `.comment`). The two big tables (`.dynsym` and `.gnu.version`: 65k entries in
libmxnet.so) are unpacked with `struct` straight from the section bytes, because pyelftools'
per-symbol objects take ~1.5 s for libmxnet.so and the bridge's import-time check cannot
afford that. Results are cached per file identity (device, inode, size, mtime).
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, TypeVar

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection

_ELF_MAGIC = b"\x7fELF"

# Symbol binding / visibility / section index values from the ELF specification.
_STB_GLOBAL, _STB_WEAK, _STB_GNU_UNIQUE = 1, 2, 10
_STV_DEFAULT, _STV_PROTECTED = 0, 3
_SHN_UNDEF = 0
_VERSYM_HIDDEN = 0x8000


_S = TypeVar("_S")


def _tag_text(tag: object, attribute: str) -> str:
    # pyelftools attaches the decoded string of a tag as an attribute named after it.
    return str(getattr(tag, attribute))


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
    """Static facts about one ELF file (see module docstring for how they are read)."""

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


_CACHE: dict[tuple[int, int, int, int], ElfInfo] = {}


def file_identity(path: str) -> tuple[int, int, int, int]:
    """(device, inode, size, mtime_ns): the key under which a file's facts are cached."""
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def read_elf(path: str) -> ElfInfo:
    """Return the static facts of the ELF file at `path` (cached); raise ElfReadError."""
    try:
        key = file_identity(path)
    except OSError as exc:
        raise ElfReadError(f"{path}: {exc.strerror or exc}") from None
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    try:
        with open(path, "rb") as stream:
            if stream.read(4) != _ELF_MAGIC:
                raise ElfReadError(f"{path}: not an ELF file")
            stream.seek(0)
            info = _read_stream(path, stream)
    except ElfReadError:
        raise
    except OSError as exc:
        raise ElfReadError(f"{path}: {exc.strerror or exc}") from None
    except (ELFError, struct.error, ValueError, IndexError, KeyError) as exc:
        raise ElfReadError(f"{path}: malformed ELF file ({exc})") from None
    _CACHE[key] = info
    return info


def _read_stream(path: str, stream: BinaryIO) -> ElfInfo:
    elf = ElfFileReader(stream)
    return elf.collect(path)


class ElfFileReader:
    """Collects ElfInfo from an open ELF stream (one instance per file)."""

    def __init__(self, stream: BinaryIO) -> None:
        self.elf = ELFFile(stream)
        self.little = self.elf.little_endian
        self.elf_class = self.elf.elfclass

    def collect(self, path: str) -> ElfInfo:
        """Read every fact ElfInfo holds."""
        soname, needed, rpath, runpath = self._dynamic_tags()
        ver_defs, def_index = self._version_definitions()
        ver_needs, need_index = self._version_needs()
        default_exports: set[str] = set()
        versioned_exports: set[tuple[str, str]] = set()
        undefined: list[UndefinedSymbol] = []
        cxx11 = cpp = 0
        for name, info, other, shndx, versym in self._dynamic_symbols():
            if name.startswith("_Z"):
                cpp += 1
                if "__cxx11" in name:
                    cxx11 += 1
            bind = info >> 4
            if bind not in (_STB_GLOBAL, _STB_WEAK, _STB_GNU_UNIQUE):
                continue
            ver_index = versym & 0x7FFF if versym is not None else 1
            if shndx == _SHN_UNDEF:
                version, vfile = need_index.get(ver_index, (None, None))
                undefined.append(UndefinedSymbol(name, version, vfile, bind == _STB_WEAK))
                continue
            if (other & 0x3) not in (_STV_DEFAULT, _STV_PROTECTED) or ver_index == 0:
                continue
            version = def_index.get(ver_index)
            if version is not None:
                versioned_exports.add((name, version))
            if versym is None or not versym & _VERSYM_HIDDEN:
                default_exports.add(name)
        return ElfInfo(
            path=path,
            elf_class=self.elf_class,
            machine=str(self.elf["e_machine"]),
            soname=soname,
            needed=needed,
            rpath=rpath,
            runpath=runpath,
            comments=self._comments(),
            default_exports=frozenset(default_exports),
            versioned_exports=frozenset(versioned_exports),
            undefined=undefined,
            version_definitions=ver_defs,
            version_needs=ver_needs,
            cxx11_symbols=cxx11,
            cpp_symbols=cpp,
            has_version_info=bool(def_index),
        )

    def _dynamic_tags(self) -> tuple[str | None, list[str], list[str], list[str]]:
        soname: str | None = None
        needed: list[str] = []
        rpath: list[str] = []
        runpath: list[str] = []
        for section in self.elf.iter_sections():
            if not isinstance(section, DynamicSection):
                continue
            for tag in section.iter_tags():
                kind = tag.entry.d_tag
                if kind == "DT_NEEDED":
                    needed.append(_tag_text(tag, "needed"))
                elif kind == "DT_SONAME":
                    soname = _tag_text(tag, "soname")
                elif kind == "DT_RPATH":
                    rpath.extend(p for p in _tag_text(tag, "rpath").split(":") if p)
                elif kind == "DT_RUNPATH":
                    runpath.extend(p for p in _tag_text(tag, "runpath").split(":") if p)
            break
        return soname, needed, rpath, runpath

    def _version_definitions(self) -> tuple[list[str], dict[int, str]]:
        section = self._section_of_type(GNUVerDefSection)
        names: list[str] = []
        index: dict[int, str] = {}
        if section is None:
            return names, index
        for verdef, aux_iter in section.iter_versions():
            aux = next(iter(aux_iter), None)
            if aux is None:
                continue
            # Index 1 is the file's own base version (its soname), not a symbol version.
            if verdef["vd_flags"] & 0x1:  # VER_FLG_BASE
                continue
            names.append(aux.name)
            index[verdef["vd_ndx"]] = aux.name
        return names, index

    def _version_needs(self) -> tuple[dict[str, list[str]], dict[int, tuple[str, str]]]:
        section = self._section_of_type(GNUVerNeedSection)
        needs: dict[str, list[str]] = {}
        index: dict[int, tuple[str, str]] = {}
        if section is None:
            return needs, index
        for verneed, aux_iter in section.iter_versions():
            soname = str(verneed.name)
            for aux in aux_iter:
                needs.setdefault(soname, []).append(str(aux.name))
                index[aux["vna_other"]] = (str(aux.name), soname)
        return needs, index

    def _section_of_type(self, kind: type[_S]) -> _S | None:
        for section in self.elf.iter_sections():
            if isinstance(section, kind):
                return section
        return None

    def _comments(self) -> list[str]:
        section = self.elf.get_section_by_name(".comment")
        if section is None:
            return []
        data = section.data()
        return [s.decode("utf-8", "replace") for s in data.split(b"\0") if s.strip()]

    def _dynamic_symbols(self) -> Iterator[tuple[str, int, int, int, int | None]]:
        """Yield (name, st_info, st_other, st_shndx, versym or None) for each .dynsym entry."""
        dynsym = self.elf.get_section_by_name(".dynsym")
        if dynsym is None:
            return
        strtab = self.elf.get_section(dynsym["sh_link"]).data()
        data = dynsym.data()
        end = "<" if self.little else ">"
        if self.elf_class == 64:
            fmt, name_i, info_i, other_i, shndx_i = end + "IBBHQQ", 0, 1, 2, 3
        else:
            fmt, name_i, info_i, other_i, shndx_i = end + "IIIBBH", 0, 3, 4, 5
        entry_size = struct.calcsize(fmt)
        versyms: tuple[int, ...] | None = None
        versym_section = self.elf.get_section_by_name(".gnu.version")
        if versym_section is not None:
            raw = versym_section.data()
            versyms = struct.unpack(f"{end}{len(raw) // 2}H", raw)
        usable = len(data) - len(data) % entry_size
        for i, entry in enumerate(struct.iter_unpack(fmt, data[:usable])):
            if i == 0:  # the null symbol
                continue
            offset = entry[name_i]
            stop = strtab.find(b"\0", offset)
            name = strtab[offset:stop].decode("utf-8", "replace")
            versym = versyms[i] if versyms is not None and i < len(versyms) else None
            yield name, entry[info_i], entry[other_i], entry[shndx_i], versym


_GLIBC_VERSION = re.compile(r"^(GLIBC|GLIBCXX|CXXABI)_(\d+(?:\.\d+)*)$")


def newest_versions(names: list[str]) -> dict[str, str]:
    """Newest GLIBC / GLIBCXX / CXXABI version among `names`, keyed by family."""
    newest: dict[str, tuple[int, ...]] = {}
    for name in names:
        match = _GLIBC_VERSION.match(name)
        if not match:
            continue
        family, number = match.group(1), tuple(int(p) for p in match.group(2).split("."))
        if number > newest.get(family, ()):
            newest[family] = number
    return {family: f"{family}_{'.'.join(map(str, v))}" for family, v in newest.items()}


def needed_versions(info: ElfInfo) -> list[str]:
    """All version names the file needs, from every DT_NEEDED library."""
    return [v for versions in info.version_needs.values() for v in versions]
