"""Read what a shared library exports, needs and was built with, without ever loading it.

read_elf() is the entry point; results are cached per file identity (device, inode, size,
mtime). The work is split by job: abi_checks.elf_tables finds the dynamic tables (from the
sections, or from the program headers when the section header table is unusable, as the
loader reads it), abi_checks.elf_symbols reads the symbol versions and sorts the symbols,
abi_checks.elf_info holds the result (ElfInfo). ElfInfo.read_from and read_notes say which
way the file was read and what that left unknown.
"""

from __future__ import annotations

import os
import re
from typing import BinaryIO

from abi_checks.elf_info import (
    FROM_PROGRAM_HEADERS,
    FROM_SECTIONS,
    ElfInfo,
    ElfReadError,
    UndefinedSymbol,
)
from abi_checks.elf_symbols import summarize_symbols
from abi_checks.elf_tables import READ_ERRORS, DynamicTables, ElfTableReader

__all__ = [
    "FROM_PROGRAM_HEADERS",
    "FROM_SECTIONS",
    "ElfInfo",
    "ElfReadError",
    "UndefinedSymbol",
    "file_identity",
    "needed_versions",
    "newest_versions",
    "read_elf",
]

_ELF_MAGIC = b"\x7fELF"

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
                raise ElfReadError(f"{path}: not an ELF file")  # noqa: TRY301 - re-raised below as is
            stream.seek(0)
            info = _read_stream(path, stream)
    except ElfReadError:
        raise
    except OSError as exc:
        raise ElfReadError(f"{path}: {exc.strerror or exc}") from None
    except READ_ERRORS as exc:
        raise ElfReadError(f"{path}: malformed ELF file ({exc})") from None
    _CACHE[key] = info
    return info


def _read_stream(path: str, stream: BinaryIO) -> ElfInfo:
    """Read every fact ElfInfo holds: from the sections, or from the program headers when the
    section header table is unusable.
    """
    reader = ElfTableReader(stream)
    problem = reader.section_problem()
    if problem is None:
        try:
            return _info(path, reader, reader.from_sections(), FROM_SECTIONS, [])
        except READ_ERRORS as exc:
            if reader.dynamic_offset() is None:
                raise
            problem = f"reading the sections failed ({exc})"
    notes = [
        (
            f"section header table unusable ({problem}): read the program headers (the "
            "PT_DYNAMIC segment) instead, as the system loader does"
        )
    ]
    tables = reader.from_dynamic_segment(notes)
    notes.append("compiler unknown: the .comment section needs the section header table")
    return _info(path, reader, tables, FROM_PROGRAM_HEADERS, notes)


def _info(
    path: str, reader: ElfTableReader, tables: DynamicTables, read_from: str, notes: list[str]
) -> ElfInfo:
    elf = reader.elf
    versions = tables.versions
    symbols = summarize_symbols(tables.symbols, versions, elf.little_endian)
    return ElfInfo(
        path=path,
        elf_class=elf.elfclass,
        machine=str(elf["e_machine"]),
        soname=tables.soname,
        needed=tables.needed,
        rpath=tables.rpath,
        runpath=tables.runpath,
        comments=tables.comments,
        default_exports=symbols.default_exports,
        versioned_exports=symbols.versioned_exports,
        undefined=symbols.undefined,
        version_definitions=versions.definitions,
        version_needs=versions.needs,
        cxx11_symbols=symbols.cxx11_symbols,
        cpp_symbols=symbols.cpp_symbols,
        has_version_info=bool(versions.def_index),
        read_from=read_from,
        read_notes=notes,
    )


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
