"""setuptools needs setup.py for what pyproject.toml cannot say: the cffi extension, the
protocol header and the symbol table copied into the packages, and the abi3 wheel tag.
Metadata is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
HEADER = Path("csrc", "include", "bridge_cffi", "protocol.h")
SYMBOL_TABLE = Path("csrc", "runtime", "symbols.def")

#: The oldest CPython the abi3 extension is built for (cffi compiles with Py_LIMITED_API);
#: pyelftools 0.33 needs 3.10.
LIMITED_API = "cp310"


class BuildPyWithHeader(build_py):
    """Install csrc/include/bridge_cffi/protocol.h as bridge_cffi/include/bridge_cffi/protocol.h,
    where bridge_cffi.get_include() finds it, and csrc/runtime/symbols.def as
    abi_checks/symbols.def, where abi_checks.requirements reads it (the source tree keeps the
    one copy of each).
    """

    def run(self) -> None:
        """Build the packages, then copy the header and the symbol table into them."""
        super().run()
        for source, target in (
            (HEADER, Path(self.build_lib, "bridge_cffi", "include", "bridge_cffi", "protocol.h")),
            (SYMBOL_TABLE, Path(self.build_lib, "abi_checks", "symbols.def")),
        ):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / source, target)


class BuildExtWithoutRunpath(build_ext):
    """Drop the building Python's own -rpath (pyenv and other non-system Pythons add one to
    LDSHARED): the extension links libc only and must not carry the build host's paths.
    """

    def build_extensions(self) -> None:
        """Build the extension with the -rpath arguments taken out of the link line."""
        linker = self.compiler.linker_so
        self.compiler.linker_so = [arg for arg in linker if not arg.startswith("-Wl,-rpath")]
        super().build_extensions()


setup(
    # The build script lives in csrc/, outside the packages: it is not installed.
    cffi_modules=["csrc/build_native.py:ffibuilder"],
    cmdclass={"build_py": BuildPyWithHeader, "build_ext": BuildExtWithoutRunpath},
    options={"bdist_wheel": {"py_limited_api": LIMITED_API}},
)
