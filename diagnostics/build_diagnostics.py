"""cffi build script of the diagnostics extension: C entry points only benchmarks call (the
push floor, ``floor.c``), kept out of ``bridge_cffi._native``, which is what users install.

The extension is built by :func:`diagnostics.load` into ``build/diagnostics/``, with the
production extension's strict flags. It binds MXNet's C API itself, from the libmxnet the
process already loaded, by compiling csrc/'s runtime symbol sources a second time (the same
files, not a copy of them).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from cffi import FFI

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CSRC = ROOT / "csrc"
#: What this extension compiles: its own C, and the runtime files binding MXNet's symbols.
SOURCES = (
    HERE / "floor.c",
    CSRC / "runtime" / "errors.c",
    CSRC / "runtime" / "symbol_table.c",
    CSRC / "runtime" / "symbols_mxnet.c",
)
#: Every file whose change calls for a rebuild.
INPUTS = (
    *SOURCES,
    HERE / "floor.h",
    Path(__file__).resolve(),
    CSRC / "build_native.py",
    *sorted((CSRC / "runtime").glob("*.h")),
    CSRC / "runtime" / "symbols.def",
    CSRC / "include" / "bridge_cffi" / "protocol.h",
)
MODULE = "_bridge_diagnostics"

# What the benchmarks need besides floor.h's own section; the values come from the headers.
_CDEF = """
#define BRIDGE_OK ...
#define BRIDGE_ERROR_CAPACITY ...
int32_t bridge_mxnet_bind(const char* library_path, char* error);
"""


def _production_build() -> ModuleType:
    """csrc/build_native.py, for its flags: one definition of how the project compiles C."""
    spec = importlib.util.spec_from_file_location("build_native", CSRC / "build_native.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {CSRC / 'build_native.py'}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_builder() -> FFI:
    """The cffi builder of the diagnostics extension, sources relative to the repository root."""
    production = _production_build()
    builder = FFI()
    builder.cdef(_CDEF + production.read_cdef((HERE / "floor.h",)))
    builder.set_source(
        MODULE,
        '#include "diagnostics/floor.h"\n',
        sources=[str(path) for path in SOURCES],
        include_dirs=[str(CSRC / "include"), str(CSRC), str(ROOT)],
        extra_compile_args=production.STRICT_C_FLAGS,
        libraries=[] if production._libc_has_dl() else ["dl"],
    )
    return builder
