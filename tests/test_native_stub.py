"""bridge_cffi/_native.pyi cannot drift from the C declarations cffi is given, nor from the
built module: every function, macro and enumerator of the cdef is in the stub with its number
of parameters, and the stub names exactly what the compiled ``lib`` exports.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from pycparser import c_ast, c_parser

from bridge_cffi import native  # its lib is the extension's (only native imports _native)
from conftest import REPO

STUB = REPO / "bridge_cffi" / "_native.pyi"
_SECTION = re.compile(r"/\* BRIDGE_CDEF_BEGIN \w+ \*/(.*?)/\* BRIDGE_CDEF_END \w+ \*/", re.DOTALL)
# pycparser parses C, not cffi's cdef dialect: the fixed-width integer types are declared for it
# (the cdef takes them from cffi's built-in types); their widths do not matter here.
_STDINT = "".join(
    f"typedef int {name};"
    for name in ("int8_t", "int16_t", "int32_t", "int64_t", "uint8_t", "uint16_t", "uint32_t",
                 "uint64_t", "size_t", "uintptr_t")
)


def _cdef_headers() -> list[Path]:
    """Every header under csrc/ with a cdef section, the public protocol.h first (as cffi reads
    them: the runtime's declarations use its types). Found by glob, wherever csrc/ puts them.
    """
    headers = [h for h in sorted((REPO / "csrc").rglob("*.h")) if _SECTION.search(h.read_text())]
    return sorted(headers, key=lambda h: h.name != "protocol.h")


def _cdef_text() -> str:
    return "\n".join(s for h in _cdef_headers() for s in _SECTION.findall(h.read_text()))


def _parse_cdef() -> tuple[dict[str, int], set[str], set[str]]:
    """(function name -> parameter count, #define names, enumerator names) of the cdef."""
    text = _cdef_text()
    defines = set(re.findall(r"^\s*#\s*define\s+(\w+)\s", text, re.MULTILINE))
    code = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    code = re.sub(r"^\s*#.*$", "", code, flags=re.MULTILINE)
    tree = c_parser.CParser().parse(_STDINT + code)
    functions: dict[str, int] = {}
    enumerators: set[str] = set()
    pending = [tree]
    while pending:  # every node: enumerators sit inside typedefs, functions at the top
        node = pending.pop()
        if isinstance(node, c_ast.Decl) and isinstance(node.type, c_ast.FuncDecl):
            params = node.type.args.params if node.type.args else []
            named = [p for p in params if not isinstance(p, c_ast.Typename)]  # not (void)
            functions[node.name] = len(named)
        elif isinstance(node, c_ast.Enumerator):
            enumerators.add(node.name)
        pending.extend(child for _, child in node.children())
    return functions, defines, enumerators


def _stub_lib() -> dict[str, int | None]:
    """The members of the stub's ``lib`` type: name -> parameter count (None: not a function)."""
    module = ast.parse(STUB.read_text())
    lib_type = next(
        node.annotation.id
        for node in module.body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
        and node.target.id == "lib" and isinstance(node.annotation, ast.Name)
    )
    cls = next(n for n in module.body if isinstance(n, ast.ClassDef) and n.name == lib_type)
    members: dict[str, int | None] = {}
    for node in cls.body:
        if isinstance(node, ast.FunctionDef):
            members[node.name] = len(node.args.args) - 1  # less self
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            members[node.target.id] = None
    return members


def test_the_cdef_is_found_and_parsed() -> None:
    functions, defines, enumerators = _parse_cdef()
    assert any(h.name == "protocol.h" for h in _cdef_headers())
    assert "bridge_call" in functions
    assert "BRIDGE_OK" in defines
    assert "kDLCPU" in enumerators


@pytest.mark.parametrize("kind", ["functions", "macros", "enumerators"])
def test_every_cdef_name_is_in_the_stub(kind: str) -> None:
    functions, defines, enumerators = _parse_cdef()
    declared = {"functions": set(functions), "macros": defines, "enumerators": enumerators}[kind]
    assert sorted(declared - set(_stub_lib())) == []


def test_every_cdef_function_has_its_parameter_count_in_the_stub() -> None:
    functions, _, _ = _parse_cdef()
    stub = _stub_lib()
    assert {name: stub.get(name) for name in functions} == functions


def test_the_stub_names_exactly_what_the_built_module_exports() -> None:
    # Catches the extern "Python" callbacks of the build script, and a name typed in the stub
    # (or used by the Python code through it) that cffi was never given.
    assert sorted(_stub_lib()) == sorted(dir(native.lib))
