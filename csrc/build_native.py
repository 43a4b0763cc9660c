"""cffi build script (API mode, out-of-line): declares the C API and compiles csrc/ into
``bridge_cffi._native``. Run by setuptools through ``cffi_modules`` at install time; declares
and compiles, nothing more. It lives in csrc/, outside the package, so it is not installed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from cffi import FFI

CSRC = Path(__file__).resolve().parent
ROOT = CSRC.parent
INCLUDE = CSRC / "include"
HEADERS = (INCLUDE / "bridge_cffi" / "protocol.h", CSRC / "runtime" / "bridge_runtime.h")

# -fexceptions: a kernel error is thrown into MXNet's engine through these C frames (DESIGN §4).
# -fvisibility=hidden: only the cffi entry point is exported, no csrc/ symbol can clash.
STRICT_C_FLAGS = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-fexceptions", "-fvisibility=hidden"]

_CDEF_SECTION = re.compile(
    r"/\* BRIDGE_CDEF_BEGIN \w+ \*/(.*?)/\* BRIDGE_CDEF_END \w+ \*/", re.DOTALL
)


def read_cdef(headers: tuple[Path, ...] = HEADERS) -> str:
    """Return the declarations marked for cffi in ``headers`` (by default the public and
    runtime headers; the diagnostics extension passes its own).
    """
    sections = []
    for header in headers:
        sections.extend(_CDEF_SECTION.findall(header.read_text()))
    return "\n".join(sections)


def _libc_has_dl() -> bool:
    """glibc 2.34 moved dlopen into libc; older systems need -ldl."""
    version = os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr") else None
    if not version or not version.startswith("glibc "):
        return True
    major, minor = (int(part) for part in version.split()[1].split(".")[:2])
    return (major, minor) >= (2, 34)


#: Callbacks into Python that C calls at graph-build time only (an operator's shape and type
#: rules, see csrc/consumers/mxnet/operators/custom_op.c); never on an engine thread.
#: Implemented by bridge_cffi.mxnet.operators with ffi.def_extern.
PYTHON_CALLBACKS = """
extern "Python" int32_t bridge_py_infer_shape(void*, int32_t, const char**, const char**, int32_t,
                                              const int32_t*, const int64_t*, int32_t, int32_t*,
                                              int64_t*, char*);
extern "Python" int32_t bridge_py_infer_type(void*, int32_t, const char**, const char**, int32_t,
                                             int32_t*, int32_t, int32_t*, char*);
"""

def native_sources() -> list[str]:
    """Every C file under csrc/ (runtime, producers, consumers), relative to the repository
    root as setuptools wants them, in a stable order.
    """
    return [str(path.relative_to(ROOT)) for path in sorted(CSRC.rglob("*.c"))]


ffibuilder = FFI()
ffibuilder.cdef(read_cdef() + PYTHON_CALLBACKS)
ffibuilder.set_source(
    "bridge_cffi._native",
    '#include "runtime/bridge_runtime.h"\n',
    sources=native_sources(),
    include_dirs=[str(INCLUDE), str(CSRC)],
    extra_compile_args=STRICT_C_FLAGS,
    libraries=[] if _libc_has_dl() else ["dl"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
