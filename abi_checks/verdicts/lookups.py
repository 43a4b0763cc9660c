"""The other facts several rules look up: a library's static facts, the engine's throw symbol."""

from __future__ import annotations

from abi_checks.facts import Facts, LibraryFacts, StaticFacts


def static_of(facts: Facts, role: str) -> tuple[LibraryFacts | None, StaticFacts | None]:
    """The library found for `role` and its static facts (None where it or they are missing)."""
    lib = facts.libraries.get(role)
    return lib, (lib.static if lib else None)


def throw_available(facts: Facts) -> bool | None:
    """Whether errors can be thrown into MXNet's engine: the child's test, else the ELF read."""
    dyn = facts.dynamic
    if dyn and dyn.throw_symbol.ok is not None:
        return dyn.throw_symbol.ok
    _, mx = static_of(facts, "mxnet")
    return mx.throw_symbol_in_tree if mx else None
