"""Read what a shared library exports, needs and was built with, without ever loading it.

pyelftools locates the sections and decodes the small ones (dynamic tags, version needs and
definitions, `.comment`). The two big tables (`.dynsym` and `.gnu.version`: 65k entries in
libmxnet.so) are unpacked with `struct` straight from the section bytes, because pyelftools'
per-symbol objects take ~1.5 s for libmxnet.so and the bridge's import-time check cannot
afford that. Results are cached per file identity (device, inode, size, mtime).

The section header table is optional for the system loader, which reads only the program
headers, and some wheels ship a damaged one (MXNet 1.6.0's libmxnet.so: "Number of section
headers: 0 (8)", string table index 29 out of range). When the table is unusable the same
facts are read from the PT_DYNAMIC segment, as the loader does: DT_NEEDED, DT_SONAME,
DT_RPATH/RUNPATH, the dynamic symbols at DT_SYMTAB/DT_STRTAB (counted from DT_GNU_HASH or
DT_HASH by pyelftools' DynamicSegment) and the versions at DT_VERSYM/DT_VERNEED/DT_VERDEF.
Only `.comment` (the compiler) has no program-header equivalent. ElfInfo.read_from and
read_notes say which way the file was read and what that left unknown.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, TypeVar

from elftools.common.exceptions import ELFError
from elftools.construct.lib.container import Container
from elftools.elf.dynamic import Dynamic, DynamicSection, DynamicSegment
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection

_ELF_MAGIC = b"\x7fELF"

# Symbol binding / visibility / section index values from the ELF specification.
_STB_GLOBAL, _STB_WEAK, _STB_GNU_UNIQUE = 1, 2, 10
_STV_DEFAULT, _STV_PROTECTED = 0, 3
_SHN_UNDEF = 0
_SHN_XINDEX = 0xFFFF
_VERSYM_HIDDEN = 0x8000
_VER_FLG_BASE = 0x1


_S = TypeVar("_S")


def _tag_text(tag: object, attribute: str) -> str:
    # pyelftools attaches the decoded string of a tag as an attribute named after it.
    return str(getattr(tag, attribute))


#: What a damaged or truncated file makes pyelftools or `struct` raise.
_READ_ERRORS = (ELFError, struct.error, ValueError, IndexError, KeyError, OverflowError)

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
    except _READ_ERRORS as exc:
        raise ElfReadError(f"{path}: malformed ELF file ({exc})") from None
    _CACHE[key] = info
    return info


def _read_stream(path: str, stream: BinaryIO) -> ElfInfo:
    return ElfFileReader(stream).collect(path)


class _ElfFile(ELFFile):
    """ELFFile whose section header table can be hidden once it is found unusable.

    pyelftools' DynamicSegment looks for the SHT_DYNAMIC section matching it when it is built;
    with a garbage table that lookup fails, so the program-header read hides the table.
    """

    sections_hidden = False

    def num_sections(self) -> int:
        return 0 if self.sections_hidden else super().num_sections()

    def section_header(self, n: int) -> Container:
        """The raw header of section `n`, without building a Section object (which follows
        sh_link and may fail on garbage)."""
        return self._get_section_header(n)

    def segment_header(self, n: int) -> Container:
        """The raw header of segment `n` (building a DynamicSegment would read the sections)."""
        return self._get_segment_header(n)


@dataclass
class _Tables:
    """The raw material of ElfInfo, from the sections or from the dynamic segment."""

    soname: str | None = None
    needed: list[str] = field(default_factory=list)
    rpath: list[str] = field(default_factory=list)
    runpath: list[str] = field(default_factory=list)
    version_definitions: list[str] = field(default_factory=list)
    def_index: dict[int, str] = field(default_factory=dict)  # version index -> name
    version_needs: dict[str, list[str]] = field(default_factory=dict)
    need_index: dict[int, tuple[str, str]] = field(default_factory=dict)  # -> (name, soname)
    comments: list[str] = field(default_factory=list)
    dynsym: bytes = b""  # the raw symbol entries, the null symbol first
    strtab: bytes = b""
    versyms: tuple[int, ...] | None = None

    def forget_versions(self) -> None:
        """Drop all version information (treated as absent: references bind by name)."""
        self.version_definitions, self.def_index = [], {}
        self.version_needs, self.need_index = {}, {}
        self.versyms = None


def _tags_of(dynamic: Dynamic) -> tuple[str | None, list[str], list[str], list[str]]:
    """(DT_SONAME, DT_NEEDED, DT_RPATH, DT_RUNPATH) of a dynamic section or segment."""
    soname: str | None = None
    needed: list[str] = []
    rpath: list[str] = []
    runpath: list[str] = []
    for tag in dynamic.iter_tags():
        kind = tag.entry.d_tag
        if kind == "DT_NEEDED":
            needed.append(_tag_text(tag, "needed"))
        elif kind == "DT_SONAME":
            soname = _tag_text(tag, "soname")
        elif kind == "DT_RPATH":
            rpath.extend(p for p in _tag_text(tag, "rpath").split(":") if p)
        elif kind == "DT_RUNPATH":
            runpath.extend(p for p in _tag_text(tag, "runpath").split(":") if p)
    return soname, needed, rpath, runpath


def _c_string(table: bytes, offset: int) -> str:
    stop = table.find(b"\0", offset)
    return table[offset : stop if stop >= 0 else len(table)].decode("utf-8", "replace")


class ElfFileReader:
    """Collects ElfInfo from an open ELF stream (one instance per file)."""

    def __init__(self, stream: BinaryIO) -> None:
        self.elf = _ElfFile(stream)
        self.little = self.elf.little_endian
        self.elf_class = self.elf.elfclass
        self.end = "<" if self.little else ">"
        self.file_size = stream.seek(0, os.SEEK_END)

    def collect(self, path: str) -> ElfInfo:
        """Read every fact ElfInfo holds: from the sections, or from the program headers
        when the section header table is unusable."""
        problem = self.section_problem()
        if problem is None:
            try:
                return self._info(path, self._from_sections(), FROM_SECTIONS, [])
            except _READ_ERRORS as exc:
                if self._dynamic_offset() is None:
                    raise
                problem = f"reading the sections failed ({exc})"
        self.elf.sections_hidden = True
        notes = [
            f"section header table unusable ({problem}): read the program headers (the "
            "PT_DYNAMIC segment) instead, as the system loader does"
        ]
        tables = self._from_dynamic_segment(notes)
        notes.append("compiler unknown: the .comment section needs the section header table")
        return self._info(path, tables, FROM_PROGRAM_HEADERS, notes)

    # ------------------------------------------------------------ is the section table usable

    def _dynamic_offset(self) -> int | None:
        """File offset of the PT_DYNAMIC segment, None if there is none."""
        for i in range(self.elf.num_segments()):
            header = self.elf.segment_header(i)
            if header["p_type"] == "PT_DYNAMIC":
                return int(header["p_offset"])
        return None

    def section_problem(self) -> str | None:
        """Why the section header table cannot be trusted, or None if it can."""
        elf = self.elf
        dynamic = self._dynamic_offset()
        try:
            count = elf.num_sections()  # e_shnum, or entry 0's sh_size when e_shnum is 0
        except _READ_ERRORS as exc:
            return f"its first entry is unreadable: {exc}"
        if count == 0:
            # A file without sections is valid; it only matters when there is something to read.
            return None if dynamic is None else "there is none: e_shoff or e_shnum is 0"
        described = (
            f"e_shnum 0 with {count} entries in entry 0's sh_size"
            if elf["e_shnum"] == 0
            else f"e_shnum {count}"
        )
        size = elf.structs.Elf_Shdr.sizeof()
        if elf["e_shentsize"] != size:
            return f"e_shentsize is {elf['e_shentsize']}, not {size}"
        if elf["e_shoff"] + count * size > self.file_size:
            return f"{described}: the table at offset {elf['e_shoff']} runs past the file's end"
        headers = [elf.section_header(i) for i in range(count)]
        index = elf["e_shstrndx"]
        if index == _SHN_XINDEX:  # the real index is in entry 0's sh_link
            index = headers[0]["sh_link"]
        if index >= count:
            return f"section name string table index {index} is out of range for {described}"
        if headers[index]["sh_type"] != "SHT_STRTAB":
            return f"section name string table index {index} is not a string table"
        for i, header in enumerate(headers):
            if header["sh_type"] != "SHT_NOBITS" and (
                header["sh_offset"] + header["sh_size"] > self.file_size
            ):
                return f"section {i} lies past the end of the file"
        if dynamic is not None and not any(
            h["sh_type"] == "SHT_DYNAMIC" and h["sh_offset"] == dynamic for h in headers
        ):
            return "no SHT_DYNAMIC section is where the PT_DYNAMIC segment is"
        return None

    # ------------------------------------------------------------ from the sections

    def _from_sections(self) -> _Tables:
        tables = _Tables(comments=self._comments())
        for section in self.elf.iter_sections():
            if isinstance(section, DynamicSection):
                tables.soname, tables.needed, tables.rpath, tables.runpath = _tags_of(section)
                break
        tables.version_definitions, tables.def_index = self._version_definitions()
        tables.version_needs, tables.need_index = self._version_needs()
        dynsym = self.elf.get_section_by_name(".dynsym")
        if dynsym is None:
            return tables
        tables.strtab = self.elf.get_section(dynsym["sh_link"]).data()
        tables.dynsym = dynsym.data()
        versym_section = self.elf.get_section_by_name(".gnu.version")
        if versym_section is not None:
            raw = versym_section.data()
            tables.versyms = struct.unpack(f"{self.end}{len(raw) // 2}H", raw)
        return tables

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
            if verdef["vd_flags"] & _VER_FLG_BASE:
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

    # ------------------------------------------------------------ from the program headers

    def _from_dynamic_segment(self, notes: list[str]) -> _Tables:
        segment = next(self.elf.iter_segments("PT_DYNAMIC"), None)
        if not isinstance(segment, DynamicSegment):
            raise ELFError("no usable section header table and no PT_DYNAMIC segment")
        tables = _Tables()
        tables.soname, tables.needed, tables.rpath, tables.runpath = _tags_of(segment)
        values = {tag.entry.d_tag: int(tag.entry.d_val) for tag in segment.iter_tags()}
        tables.strtab = self._read(self._table(segment, "DT_STRTAB"), values.get("DT_STRSZ", 0))
        if "DT_SYMTAB" not in values:
            return tables
        count = segment.num_symbols()  # from DT_GNU_HASH, else DT_HASH, else the next table
        entry = self.elf.structs.Elf_Sym.sizeof()
        tables.dynsym = self._read(self._table(segment, "DT_SYMTAB"), count * entry)
        try:
            if "DT_VERSYM" in values:
                raw = self._read(self._table(segment, "DT_VERSYM"), count * 2)
                tables.versyms = struct.unpack(f"{self.end}{count}H", raw)
            if "DT_VERDEF" in values:
                self._segment_version_definitions(
                    tables, self._table(segment, "DT_VERDEF"), values.get("DT_VERDEFNUM", 0)
                )
            if "DT_VERNEED" in values:
                self._segment_version_needs(
                    tables, self._table(segment, "DT_VERNEED"), values.get("DT_VERNEEDNUM", 0)
                )
        except _READ_ERRORS as exc:
            tables.forget_versions()
            notes.append(
                f"symbol versions unknown ({exc}): references are matched by name only"
            )
        return tables

    def _table(self, segment: DynamicSegment, tag: str) -> int:
        """File offset of the table a DT_* tag points at (its address, through PT_LOAD)."""
        address, offset = segment.get_table_offset(tag)
        if offset is None:
            raise ELFError(f"{tag} ({address}) is not inside any PT_LOAD segment")
        return int(offset)

    def _read(self, offset: int, size: int) -> bytes:
        if offset < 0 or size < 0 or offset + size > self.file_size:
            raise ELFError(f"{size} bytes at offset {offset} run past the end of the file")
        self.elf.stream.seek(offset)
        return self.elf.stream.read(size)

    def _segment_version_definitions(self, tables: _Tables, offset: int, count: int) -> None:
        # Elf_Verdef: vd_version, vd_flags, vd_ndx, vd_cnt (H each), vd_hash, vd_aux, vd_next
        # (I each); Elf_Verdaux: vda_name, vda_next (I each). Same layout in ELF32 and ELF64.
        for _ in range(count):
            _, flags, ndx, _, _, aux, following = struct.unpack(
                self.end + "HHHHIII", self._read(offset, 20)
            )
            (name_at, _) = struct.unpack(self.end + "II", self._read(offset + aux, 8))
            if not flags & _VER_FLG_BASE:
                name = _c_string(tables.strtab, name_at)
                tables.version_definitions.append(name)
                tables.def_index[ndx] = name
            if not following:
                break
            offset += following

    def _segment_version_needs(self, tables: _Tables, offset: int, count: int) -> None:
        # Elf_Verneed: vn_version, vn_cnt (H each), vn_file, vn_aux, vn_next (I each);
        # Elf_Vernaux: vna_hash (I), vna_flags, vna_other (H each), vna_name, vna_next (I each).
        for _ in range(count):
            _, entries, file_at, aux, following = struct.unpack(
                self.end + "HHIII", self._read(offset, 16)
            )
            soname = _c_string(tables.strtab, file_at)
            at = offset + aux
            for _ in range(entries):
                _, _, other, name_at, aux_next = struct.unpack(
                    self.end + "IHHII", self._read(at, 16)
                )
                name = _c_string(tables.strtab, name_at)
                tables.version_needs.setdefault(soname, []).append(name)
                tables.need_index[other] = (name, soname)
                if not aux_next:
                    break
                at += aux_next
            if not following:
                break
            offset += following

    # ------------------------------------------------------------ the symbols

    def _info(self, path: str, tables: _Tables, read_from: str, notes: list[str]) -> ElfInfo:
        default_exports: set[str] = set()
        versioned_exports: set[tuple[str, str]] = set()
        undefined: list[UndefinedSymbol] = []
        cxx11 = cpp = 0
        for name, info, other, shndx, versym in self._dynamic_symbols(tables):
            if name.startswith("_Z"):
                cpp += 1
                if "__cxx11" in name:
                    cxx11 += 1
            bind = info >> 4
            if bind not in (_STB_GLOBAL, _STB_WEAK, _STB_GNU_UNIQUE):
                continue
            ver_index = versym & 0x7FFF if versym is not None else 1
            if shndx == _SHN_UNDEF:
                version, vfile = tables.need_index.get(ver_index, (None, None))
                undefined.append(UndefinedSymbol(name, version, vfile, bind == _STB_WEAK))
                continue
            if (other & 0x3) not in (_STV_DEFAULT, _STV_PROTECTED) or ver_index == 0:
                continue
            version = tables.def_index.get(ver_index)
            if version is not None:
                versioned_exports.add((name, version))
            if versym is None or not versym & _VERSYM_HIDDEN:
                default_exports.add(name)
        return ElfInfo(
            path=path,
            elf_class=self.elf_class,
            machine=str(self.elf["e_machine"]),
            soname=tables.soname,
            needed=tables.needed,
            rpath=tables.rpath,
            runpath=tables.runpath,
            comments=tables.comments,
            default_exports=frozenset(default_exports),
            versioned_exports=frozenset(versioned_exports),
            undefined=undefined,
            version_definitions=tables.version_definitions,
            version_needs=tables.version_needs,
            cxx11_symbols=cxx11,
            cpp_symbols=cpp,
            has_version_info=bool(tables.def_index),
            read_from=read_from,
            read_notes=notes,
        )

    def _dynamic_symbols(
        self, tables: _Tables
    ) -> Iterator[tuple[str, int, int, int, int | None]]:
        """Yield (name, st_info, st_other, st_shndx, versym or None) for each dynamic symbol."""
        if self.elf_class == 64:
            fmt, name_i, info_i, other_i, shndx_i = self.end + "IBBHQQ", 0, 1, 2, 3
        else:
            fmt, name_i, info_i, other_i, shndx_i = self.end + "IIIBBH", 0, 3, 4, 5
        entry_size = struct.calcsize(fmt)
        data, strtab, versyms = tables.dynsym, tables.strtab, tables.versyms
        usable = len(data) - len(data) % entry_size
        for i, entry in enumerate(struct.iter_unpack(fmt, data[:usable])):
            if i == 0:  # the null symbol
                continue
            name = _c_string(strtab, entry[name_i])
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
