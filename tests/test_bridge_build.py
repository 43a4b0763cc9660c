"""The extension is pure C: strict warnings, and no C++ or MXNet/TVM library linked."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bridge_cffi import native
from conftest import REPO

STRICT = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-fexceptions"]
# Every C file of the extension, and of the diagnostics extension the benchmarks build.
C_SOURCES = sorted([*(REPO / "csrc").rglob("*.c"), *(REPO / "diagnostics").glob("*.c")])


def test_built_extension_links_no_cpp_runtime_mxnet_or_tvm() -> None:
    ldd = subprocess.run(["ldd", native.EXTENSION_PATH], capture_output=True, text=True, check=True)
    linked = ldd.stdout
    for forbidden in ("libstdc++", "libmxnet", "libtvm", "libc++"):
        assert forbidden not in linked, f"{forbidden} is linked:\n{linked}"
    assert "libc.so" in linked


def test_built_extension_needs_no_cpp_symbols() -> None:
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    with open(native.EXTENSION_PATH, "rb") as handle:
        symbols = ELFFile(handle).get_section_by_name(".dynsym")
        assert isinstance(symbols, SymbolTableSection)
        undefined = [s.name for s in symbols.iter_symbols()
                     if s["st_shndx"] == "SHN_UNDEF" and s.name]
    assert not [name for name in undefined if name.startswith("_Z")], undefined
    assert not [name for name in undefined if name.startswith(("MX", "TVM"))], undefined


def test_built_extension_carries_no_diagnostics() -> None:
    # The benchmark floor is diagnostics/' extension, never the one users install.
    assert not hasattr(native.lib, "bridge_floor_push_many")


@pytest.mark.parametrize("source", C_SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_csrc_compiles_with_strict_warnings(source: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        ["gcc", *STRICT, "-I", str(REPO / "csrc" / "include"), "-I", str(REPO / "csrc"), "-c",
         str(source), "-o", str(tmp_path / "out.o")],
        capture_output=True, text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_public_header_compiles_as_c_and_cpp(tmp_path: Path) -> None:
    probe = tmp_path / "probe.c"
    probe.write_text('#include "bridge_cffi/protocol.h"\n'
                     'int bridge_probe_size = sizeof(bridge_kernel);\n')
    for compiler, flags in (("gcc", ["-std=c11", "-x", "c"]), ("g++", ["-std=c++11", "-x", "c++"])):
        done = subprocess.run(
            [compiler, *flags, "-Wall", "-Wextra", "-Werror", "-pedantic", "-I",
             str(REPO / "csrc" / "include"), "-c", str(probe), "-o", str(tmp_path / "p.o")],
            capture_output=True, text=True,
            check=False,
        )
        assert done.returncode == 0, f"{compiler}: {done.stderr}"


def test_argument_is_16_bytes_and_kernel_header_is_stable() -> None:
    ffi = native.ffi
    assert ffi.sizeof("bridge_arg") == 16
    assert ffi.offsetof("bridge_arg", "value") == 8
    assert ffi.offsetof("bridge_kernel", "struct_size") == 0
    assert ffi.offsetof("bridge_kernel", "abi_major") == 4
    assert ffi.offsetof("bridge_kernel", "name") == 8
