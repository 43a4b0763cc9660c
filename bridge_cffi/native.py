"""The one door to the compiled extension (``bridge_cffi._native``, built by cffi).

Every other module, in the package and outside it (tests, benchmarks, tools), takes ``ffi``
and ``lib`` from here, so the extension's untyped surface has one importer (import-linter's
contract in pyproject.toml keeps it so).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from bridge_cffi._native import ffi, lib

if TYPE_CHECKING:
    from bridge_cffi._native import CData
else:
    #: Every cdata's type (a pointer, array or struct of the cdef); _native.pyi types its fields.
    CData = ffi.CData

#: The extension's file: MXNet loads it as an extension library (operators' second route), and
#: the sanitizer canary reports which build it ran.
EXTENSION_PATH: str = sys.modules["bridge_cffi._native"].__file__ or ""

__all__ = ["EXTENSION_PATH", "CData", "ffi", "lib"]
