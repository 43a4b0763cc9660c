"""What a function compiled by TVM 0.27 says about its own parameters.

A built module keeps no parameter metadata (``Module.get_function_metadata`` is empty for
LLVM code), but TVM's generated entry embeds its signature for its own error messages, e.g.
``main(x: Tensor([n], float32), y: Tensor([20], int8), scale: float32)``. That string is in
the module's LLVM IR (``inspect_source("ll")``) and in an exported library's read-only data.
Parsed once at wrap time, it lets the bridge check a call's arity, kinds, dtypes and shapes in
C before anything is pushed; where it cannot be found, checks happen in the kernel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from bridge_cffi.foreign_types import TvmModule

#: A signature string as TVM's codegen embeds it: ``name(param, ...)`` NUL-terminated.
_IR_SIGNATURE = re.compile(r'c"([A-Za-z_][\w.]*)\(((?:[^"\\]|\\[0-9A-Fa-f]{2})*)\)\\00"')
_FILE_SIGNATURE = re.compile(
    rb"([A-Za-z_][\w.]*)\(((?:\w+: [^\x00()]*(?:\([^\x00()]*\))?(?:, )?)*)\)\x00"
)
_TENSOR = re.compile(r"^Tensor\(\[(.*)\], (\w+)\)$")

#: MXNet's mshadow type flags, by TVM dtype name.
MX_DTYPE_FLAGS = {
    "float32": 0,
    "float64": 1,
    "float16": 2,
    "uint8": 3,
    "int32": 4,
    "int8": 5,
    "int64": 6,
    "bool": 7,
    "bfloat16": 12,
}
INT_SCALARS = {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}
FLOAT_SCALARS = {"float16", "float32", "float64", "bfloat16"}


@dataclass(frozen=True)
class Parameter:
    """One parameter: a tensor with a dtype and extents (ints, or names of symbolic extents,
    or None where the extent is an expression), or a scalar of a dtype.
    """

    name: str
    tensor: bool
    dtype: str
    shape: tuple[int | str | None, ...] = ()


@dataclass(frozen=True)
class Signature:
    """A compiled function's name and parameters, and the text TVM wrote them as."""

    function: str
    parameters: tuple[Parameter, ...]
    text: str


def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif depth == 0 and text.startswith(", ", i):
            parts.append(text[start:i])
            start = i + 2
    if text[start:]:
        parts.append(text[start:])
    return parts


def _extent(text: str) -> int | str | None:
    text = text.strip()
    if text.isdigit():
        return int(text)
    return text if text.isidentifier() else None


def parse(function: str, parameters_text: str) -> Signature | None:
    """The Signature of ``function(parameters_text)``, or None when a part is not understood."""
    parameters = []
    for part in _split_top_level(parameters_text):
        name, sep, kind = part.partition(": ")
        if not sep or not name.isidentifier():
            return None
        tensor = _TENSOR.match(kind)
        if tensor:
            dims = (
                tuple(_extent(d) for d in _split_top_level(tensor.group(1)))
                if tensor.group(1)
                else ()
            )
            parameters.append(Parameter(name, True, tensor.group(2), dims))
        elif re.fullmatch(r"\w+", kind):
            parameters.append(Parameter(name, False, kind))
        else:
            return None
    return Signature(function, tuple(parameters), f"{function}({parameters_text})")


def _unescape_ir(text: str) -> str:
    return re.sub(r"\\([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), text)


def _choose(found: list[tuple[str, str]], entry: str) -> Signature | None:
    named = [item for item in found if item[0] == entry]
    candidates = named or (found if len(found) == 1 else [])
    if len(candidates) != 1:
        return None
    return parse(*candidates[0])


def of_module(module: TvmModule, entry: str) -> Signature | None:
    """The signature of ``module``'s function ``entry`` (or of its only function), if TVM
    embedded one in the module's LLVM IR.
    """
    try:
        source = module.inspect_source("ll")
    except Exception:  # noqa: BLE001 - not an LLVM module, or loaded from a file
        return None
    found = {(name, _unescape_ir(text)) for name, text in _IR_SIGNATURE.findall(source)}
    return _choose(sorted(found), entry)


def of_library(path: str | Path, entry: str) -> Signature | None:
    """The signature of function ``entry`` (or the only one) in an exported library's bytes."""
    data = Path(path).read_bytes()
    found = {
        (name.decode(), text.decode("utf-8", "replace"))
        for name, text in _FILE_SIGNATURE.findall(data)
        if b": " in text or not text
    }
    return _choose(sorted(found), entry)
