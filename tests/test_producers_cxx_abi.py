"""Producer (d): C++ kernels built with the old and the C++11 std::string ABI both work.

tests/producers/cxx_abi_kernel.cpp uses std::string and exceptions inside and exports only the
C protocol struct. It is compiled twice by g++, with -D_GLIBCXX_USE_CXX11_ABI=0 (like MXNet's
pip wheels) and =1 (like TVM's). The symbol tables prove the two builds really differ; the
engine runs both, in one process, next to MXNet's own old-ABI libstdc++ use: the producer's
C++ ABI no longer matters.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

import bridge_cffi
from conftest import REPO

SOURCE = REPO / "tests" / "producers" / "cxx_abi_kernel.cpp"
LABEL_OFFSET = len("cxx_scale")  # the kernel adds its std::string label's length


def _build(output_dir: Path, cxx11_abi: int) -> Path:
    compiler = shutil.which("g++")
    if compiler is None:
        pytest.skip("g++ is not installed")
    library = output_dir / f"libcxx_abi{cxx11_abi}.so"
    subprocess.run(
        [compiler, "-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
         "-fvisibility=hidden", f"-D_GLIBCXX_USE_CXX11_ABI={cxx11_abi}",
         "-I", str(REPO / "csrc" / "include"), str(SOURCE), "-o", str(library)],
        check=True, capture_output=True, text=True,
    )
    return library


def _dynamic_symbols(library: Path) -> tuple[set[str], set[str]]:
    """(defined, undefined) names of the dynamic symbol table."""
    defined: set[str] = set()
    undefined: set[str] = set()
    with library.open("rb") as handle:
        dynsym = ELFFile(handle).get_section_by_name(".dynsym")
        assert isinstance(dynsym, SymbolTableSection)
        for symbol in dynsym.iter_symbols():
            if not symbol.name:
                continue
            (undefined if symbol["st_shndx"] == "SHN_UNDEF" else defined).add(symbol.name)
    return defined, undefined


@pytest.fixture(scope="module", params=[0, 1], ids=["old_abi", "cxx11_abi"])
def cxx_build(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp(f"cxx_abi{request.param}"), request.param)


@pytest.fixture(scope="module")
def both_builds(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    directory = tmp_path_factory.mktemp("cxx_abi_both")
    return {abi: _build(directory, abi) for abi in (0, 1)}


def test_the_two_builds_really_use_different_string_abis(both_builds: dict[int, Path]) -> None:
    old_defined, old_undefined = _dynamic_symbols(both_builds[0])
    new_defined, new_undefined = _dynamic_symbols(both_builds[1])
    assert not any("__cxx11" in name for name in old_defined | old_undefined)
    assert "_Z19describe_cxx_kernelRKSs" in old_defined  # old std::string mangles as Ss
    assert any(name.startswith("_Z19describe_cxx_kernelRKNSt7__cxx1112basic_string")
               for name in new_defined)
    assert any("__cxx11" in name for name in new_undefined)  # libstdc++'s new string
    # What the consumer uses is identical: the C factories, nothing mangled.
    factories = {"cxx_kernel_create", "cxx_failing_create", "cxx_newer_minor_create",
                 "cxx_wrong_major_create", "cxx_small_struct_create"}
    assert factories <= old_defined and factories <= new_defined


def test_cxx_kernel_runs_on_the_engine(cxx_build: Path) -> None:
    scale = bridge_cffi.to_mxnet_func(
        bridge_cffi.load_c_kernel(cxx_build, "cxx_kernel_create"), const_loc=[0]
    )
    assert scale.name == "cxx_scale"  # the name is the kernel's std::string, read as C
    x = mx.nd.array(np.arange(10, dtype="float32"))
    out = mx.nd.zeros((10,))
    scale(x, out, 2.0)
    np.testing.assert_array_equal(out.asnumpy(), np.arange(10) * 2.0 + LABEL_OFFSET)


def test_cxx_exception_message_reaches_the_wait(cxx_build: Path) -> None:
    failing = bridge_cffi.to_mxnet_func(
        bridge_cffi.load_c_kernel(cxx_build, "cxx_failing_create"), const_loc=[0]
    )
    out = mx.nd.zeros((2,))
    failing(mx.nd.ones((2,)), out, 0.25)
    with pytest.raises(mx.base.MXNetError, match=r"cxx_failing refused scale 0.25"):
        out.asnumpy()
    mx.nd.waitall()


def test_old_and_cxx11_abi_kernels_chain_in_one_process(both_builds: dict[int, Path]) -> None:
    old = bridge_cffi.to_mxnet_func(bridge_cffi.load_c_kernel(both_builds[0], "cxx_kernel_create"),
                                    const_loc=[0])
    new = bridge_cffi.to_mxnet_func(bridge_cffi.load_c_kernel(both_builds[1], "cxx_kernel_create"),
                                    const_loc=[0])
    x = mx.nd.zeros((50,))
    middle = mx.nd.empty((50,))
    expected = np.zeros(50)
    for _ in range(4):  # pipelined, no waits
        old(x, middle, 2.0)
        new(middle, x, 1.0)
        expected = (expected * 2.0 + LABEL_OFFSET) * 1.0 + LABEL_OFFSET
    np.testing.assert_array_equal(x.asnumpy(), expected)


def test_cxx_kernel_with_newer_minor_version_is_accepted(cxx_build: Path) -> None:
    scale = bridge_cffi.to_mxnet_func(
        bridge_cffi.load_c_kernel(cxx_build, "cxx_newer_minor_create"), const_loc=[0]
    )
    out = mx.nd.zeros((3,))
    scale(mx.nd.ones((3,)), out, 4.0)
    np.testing.assert_array_equal(out.asnumpy(), np.full(3, 4.0 + len("cxx_newer_minor")))


def test_cxx_kernel_with_other_major_version_is_refused(cxx_build: Path) -> None:
    with pytest.raises(bridge_cffi.BridgeKernelError, match="ABI major version 2 is not supported"):
        bridge_cffi.load_c_kernel(cxx_build, "cxx_wrong_major_create")


def test_cxx_kernel_with_too_small_struct_is_refused(cxx_build: Path) -> None:
    with pytest.raises(bridge_cffi.BridgeKernelError, match="struct_size is 8 bytes, smaller than"):
        bridge_cffi.load_c_kernel(cxx_build, "cxx_small_struct_create")
