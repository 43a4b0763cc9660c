"""Build small shared libraries with gcc at test time, for the abi_checks tests."""

from __future__ import annotations

import random
import shutil
import struct
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


#: How `break_section_headers` damages a copy. The loader reads only the program headers, so
#: every variant still loads; readelf and pyelftools lose the sections.
SECTION_DAMAGE = {
    # MXNet 1.6.0's pip libmxnet.so: e_shnum 0, e_shoff at 8 garbage entries whose first
    # sh_size says 8, e_shstrndx 29 ("Number of section headers: 0 (8)", index out of range).
    "like-mxnet-1.6.0": "garbage table, e_shnum 0, e_shstrndx 29",
    "shstrndx-out-of-range": "e_shstrndx beyond e_shnum",
    "table-past-end": "e_shoff beyond the end of the file",
    "no-table": "e_shoff, e_shnum and e_shstrndx 0 (as sstrip leaves it)",
}

# ELF64 header fields (little endian): e_shoff, e_shentsize, e_shnum, e_shstrndx.
_E_SHOFF, _E_SHENTSIZE, _E_SHNUM, _E_SHSTRNDX = 0x28, 0x3A, 0x3C, 0x3E


def break_section_headers(source: Path, target: Path, damage: str) -> Path:
    """Copy `source` (an x86-64/aarch64 ELF64 little-endian file) to `target` with its section
    header table made unusable as `damage` (a SECTION_DAMAGE key) says.
    """
    data = bytearray(source.read_bytes())
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "ELF64 little endian only"
    entry = struct.unpack_from("<H", data, _E_SHENTSIZE)[0]
    if damage == "like-mxnet-1.6.0":
        garbage = bytearray(random.Random(160).randbytes(8 * entry))
        struct.pack_into("<Q", garbage, 0x20, 8)  # entry 0's sh_size: "0 (8)"
        struct.pack_into("<Q", data, _E_SHOFF, len(data))
        data += garbage
        struct.pack_into("<HH", data, _E_SHNUM, 0, 29)
    elif damage == "shstrndx-out-of-range":
        count = struct.unpack_from("<H", data, _E_SHNUM)[0]
        struct.pack_into("<H", data, _E_SHSTRNDX, count + 5)
    elif damage == "table-past-end":
        struct.pack_into("<Q", data, _E_SHOFF, len(data) + 4096)
    elif damage == "no-table":
        struct.pack_into("<Q", data, _E_SHOFF, 0)
        struct.pack_into("<HH", data, _E_SHNUM, 0, 0)
    else:
        raise ValueError(f"unknown damage {damage!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(bytes(data))
    return target
