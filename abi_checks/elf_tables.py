"""Find a shared library's dynamic tables, from its sections or, as the loader does, from the
PT_DYNAMIC segment of its program headers; pyelftools reads both ways.

The section header table is optional for the system loader, which reads only the program
headers, and some wheels ship a damaged one (MXNet 1.6.0's libmxnet.so: "Number of section
headers: 0 (8)", string table index 29 out of range). section_problem() says when the table
cannot be trusted; the tables are then found through the dynamic tags: DT_NEEDED, DT_SONAME,
DT_RPATH/RUNPATH, the symbols at DT_SYMTAB/DT_STRTAB (counted from DT_GNU_HASH or DT_HASH by
pyelftools' DynamicSegment) and the versions at DT_VERSYM/DT_VERDEF/DT_VERNEED. pyelftools has
no reader for a version table found through a dynamic tag, so each table is described by the
section header a linker writes for it and read by pyelftools' own section classes: one parser
for both ways. Only `.comment` (the compiler) has no program-header equivalent.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

from elftools.common.exceptions import ELFError
from elftools.common.utils import struct_parse
from elftools.construct.lib.container import Container
from elftools.elf.dynamic import Dynamic, DynamicSection, DynamicSegment
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection, GNUVerSymSection
from elftools.elf.sections import StringTableSection, SymbolTableSection

from abi_checks.elf_symbols import SymbolVersions, read_symbol_versions

#: What a damaged or truncated file makes pyelftools or `struct` raise.
READ_ERRORS = (ELFError, struct.error, ValueError, IndexError, KeyError, OverflowError)

_SHN_XINDEX = 0xFFFF


class _ElfFile(ELFFile):
    """ELFFile whose section header table can be hidden once it is found unusable.

    pyelftools' DynamicSegment looks for the SHT_DYNAMIC section matching it when it is built
    (and ELFFile builds every segment to map an address to a file offset); with a garbage table
    that lookup raises, so the program-header read reports no sections, as the loader sees it.
    """

    sections_hidden = False

    def num_sections(self) -> int:
        """0 once the table is hidden, else pyelftools' count."""
        return 0 if self.sections_hidden else super().num_sections()


@dataclass
class DynamicTables:
    """What ElfInfo is made from, found through the sections or through the dynamic segment."""

    soname: str | None = None
    needed: list[str] = field(default_factory=list)
    rpath: list[str] = field(default_factory=list)
    runpath: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    symbols: SymbolTableSection | None = None  # the dynamic symbols, with their string table
    versions: SymbolVersions = field(default_factory=SymbolVersions)


def _tag_text(tag: object, attribute: str) -> str:
    # pyelftools attaches the decoded string of a tag as an attribute named after it.
    return str(getattr(tag, attribute))


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


class ElfTableReader:
    """Finds the DynamicTables of one open ELF stream."""

    def __init__(self, stream: BinaryIO) -> None:
        self.elf = _ElfFile(stream)
        self.file_size = stream.seek(0, os.SEEK_END)

    # ------------------------------------------------------------ is the section table usable

    def _section_header(self, n: int) -> Container:
        # The raw header: get_section() builds a Section, which follows sh_link and may fail
        # on garbage before the table has been judged.
        elf = self.elf
        at = elf["e_shoff"] + n * elf["e_shentsize"]
        header: Container = struct_parse(elf.structs.Elf_Shdr, elf.stream, at)  # untyped
        return header

    def dynamic_offset(self) -> int | None:
        """File offset of the PT_DYNAMIC segment, None if there is none."""
        elf = self.elf
        # Raw program headers: iter_segments() builds a DynamicSegment, which reads the sections.
        for i in range(elf.num_segments()):
            at = elf["e_phoff"] + i * elf["e_phentsize"]
            header = struct_parse(elf.structs.Elf_Phdr, elf.stream, at)
            if header["p_type"] == "PT_DYNAMIC":
                return int(header["p_offset"])
        return None

    def section_problem(self) -> str | None:
        """Why the section header table cannot be trusted, or None if it can."""
        elf = self.elf
        dynamic = self.dynamic_offset()
        try:
            count = elf.num_sections()  # e_shnum, or entry 0's sh_size when e_shnum is 0
        except READ_ERRORS as exc:
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
        headers = [self._section_header(i) for i in range(count)]
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

    def from_sections(self) -> DynamicTables:
        """The tables as the section header table lists them (the first of each kind)."""
        tables = DynamicTables()
        dynamic = verdef = verneed = versym = None
        for section in self.elf.iter_sections():
            if isinstance(section, DynamicSection) and dynamic is None:
                dynamic = section
            elif isinstance(section, GNUVerDefSection) and verdef is None:
                verdef = section
            elif isinstance(section, GNUVerNeedSection) and verneed is None:
                verneed = section
            elif isinstance(section, GNUVerSymSection) and versym is None:
                versym = section
            elif section.name == ".dynsym" and isinstance(section, SymbolTableSection):
                tables.symbols = section
            elif section.name == ".comment":
                data = section.data()
                tables.comments = [
                    s.decode("utf-8", "replace") for s in data.split(b"\0") if s.strip()
                ]
        if dynamic is not None:
            tables.soname, tables.needed, tables.rpath, tables.runpath = _tags_of(dynamic)
        tables.versions = read_symbol_versions(
            verdef, verneed, versym, self.elf.little_endian
        )
        return tables

    # ------------------------------------------------------------ from the program headers

    def from_dynamic_segment(self, notes: list[str]) -> DynamicTables:
        """The tables the dynamic tags point at; the section header table is hidden first.
        Version tables that cannot be read leave the versions unknown, with a note.
        """
        self.elf.sections_hidden = True
        segment = next(self.elf.iter_segments("PT_DYNAMIC"), None)
        if not isinstance(segment, DynamicSegment):
            raise ELFError("no usable section header table and no PT_DYNAMIC segment")
        tables = DynamicTables()
        tables.soname, tables.needed, tables.rpath, tables.runpath = _tags_of(segment)
        values = {tag.entry.d_tag: int(tag.entry.d_val) for tag in segment.iter_tags()}
        strtab = StringTableSection(
            self._header(segment, "DT_STRTAB", "SHT_STRTAB", values.get("DT_STRSZ", 0)),
            ".dynstr",
            self.elf,
        )
        if "DT_SYMTAB" not in values:
            return tables
        count = segment.num_symbols()  # from DT_GNU_HASH, else DT_HASH, else the next table
        entry = self.elf.structs.Elf_Sym.sizeof()
        symtab = self._header(segment, "DT_SYMTAB", "SHT_DYNSYM", count * entry, entry_size=entry)
        tables.symbols = SymbolTableSection(symtab, ".dynsym", self.elf, strtab)
        try:
            versym = verdef = verneed = None
            if "DT_VERSYM" in values:
                size = count * 2
                header = self._header(segment, "DT_VERSYM", "SHT_GNU_versym", size, entry_size=2)
                versym = GNUVerSymSection(header, ".gnu.version", self.elf, tables.symbols)
            if "DT_VERDEF" in values:
                count_tag = values.get("DT_VERDEFNUM", 0)
                header = self._header(segment, "DT_VERDEF", "SHT_GNU_verdef", 0, count_tag)
                verdef = GNUVerDefSection(header, ".gnu.version_d", self.elf, strtab)
            if "DT_VERNEED" in values:
                count_tag = values.get("DT_VERNEEDNUM", 0)
                header = self._header(segment, "DT_VERNEED", "SHT_GNU_verneed", 0, count_tag)
                verneed = GNUVerNeedSection(header, ".gnu.version_r", self.elf, strtab)
            tables.versions = read_symbol_versions(
                verdef, verneed, versym, self.elf.little_endian
            )
        except READ_ERRORS as exc:
            tables.versions = SymbolVersions()
            notes.append(
                f"symbol versions unknown ({exc}): references are matched by name only"
            )
        return tables

    def _header(
        self,
        segment: DynamicSegment,
        tag: str,
        kind: str,
        size: int,
        count: int = 0,
        entry_size: int = 0,
    ) -> Container:
        """The section header a linker would write for the table `tag` points at.

        `size` bytes must lie inside the file (0 for the version tables, whose size no tag
        gives: pyelftools walks them by `count`, sh_info, and each entry's next-offset).
        """
        address, offset = segment.get_table_offset(tag)
        if offset is None:
            raise ELFError(f"{tag} ({address}) is not inside any PT_LOAD segment")
        if offset < 0 or size < 0 or offset + size > self.file_size:
            raise ELFError(f"{size} bytes at offset {offset} run past the end of the file")
        return Container(
            sh_name=0, sh_type=kind, sh_flags=0, sh_addr=address, sh_offset=offset,
            sh_size=size, sh_link=0, sh_info=count, sh_addralign=1, sh_entsize=entry_size,
        )
