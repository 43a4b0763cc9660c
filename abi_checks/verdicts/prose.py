"""Sentence parts the rules share: how a file was read, which string ABI, why no compiler."""

from __future__ import annotations

from abi_checks.facts import StaticFacts


def read_from_suffix(s: StaticFacts) -> str:
    """Empty when the file was read from its sections, else a clause saying it was not."""
    if s.read_from == "sections":
        return ""
    return " (read from the program headers: its section header table is unusable)"


def why_compiler_unknown(s: StaticFacts) -> str:
    """Why no compiler could be named for a library."""
    if s.read_from != "sections":
        return "its section header table is unusable, so .comment cannot be read"
    return "no compiler named in .comment"


def abi_name(s: StaticFacts) -> str:
    """The library's std::string ABI with the symbol count that shows it."""
    if s.string_abi == "cxx11":
        return f"C++11 ABI ({s.cxx11_symbols} __cxx11 symbols)"
    return f"old ABI (0 __cxx11 symbols among {s.cpp_symbols} C++ symbols)"
