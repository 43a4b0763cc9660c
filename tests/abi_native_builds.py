"""Build small shared libraries with gcc at test time, for the abi_checks tests."""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
from pathlib import Path

SITE_PACKAGES = Path(sysconfig.get_paths()["purelib"])
PACKAGE_LIBMXNET = SITE_PACKAGES / "mxnet" / "libmxnet.so"
PACKAGE_LIBTVM_FFI = SITE_PACKAGES / "tvm_ffi" / "lib" / "libtvm_ffi.so"
PACKAGE_LIBTVM_RUNTIME = SITE_PACKAGES / "tvm" / "lib" / "libtvm_runtime.so"


def gcc() -> str:
    """Path of gcc; the tests need it (CI installs build-essential)."""
    found = shutil.which("gcc") or shutil.which("cc")
    assert found, "gcc is required to build the test libraries"
    return found


def build_shared(
    directory: Path,
    name: str,
    source: str,
    link: list[str] | None = None,
    version_script: str | None = None,
) -> Path:
    """Compile `source` (C) into `directory/name` as a shared library and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    src = directory / f"{name}.c"
    src.write_text(source)
    out = directory / name
    cmd = [gcc(), "-shared", "-fPIC", "-O0", "-o", str(out), str(src)]
    if version_script is not None:
        script = directory / f"{name}.map"
        script.write_text(version_script)
        cmd.append(f"-Wl,--version-script={script}")
    cmd += link or []
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out


def c_functions(names: list[str]) -> str:
    """C source defining `int NAME(void) { return 0; }` for every name."""
    return "".join(f"int {n}(void) {{ return 0; }}\n" for n in names)
