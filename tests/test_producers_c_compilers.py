"""Producer (c): a plain C kernel written to the public header, built at test time by clang.

tests/test_bridge_c_protocol.py covers the gcc build (values, views, version and size checks);
here the same source is built by clang, its checks are repeated for that build, and a gcc build
and a clang build run chained in one process.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
from elftools.elf.elffile import ELFFile

import bridge_cffi
from conftest import compile_c_kernels


def _comment_strings(library: Path) -> list[str]:
    """The compiler identification strings in the ELF .comment section."""
    with library.open("rb") as handle:
        section = ELFFile(handle).get_section_by_name(".comment")
        data = section.data() if section is not None else b""
    return [part.decode("utf-8", "replace") for part in data.split(b"\0") if part]


@pytest.fixture(scope="module")
def clang_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("clang") is None:
        pytest.skip("clang is not installed (.ci/run installs Debian's clang package)")
    return compile_c_kernels(tmp_path_factory.mktemp("clang_kernels"), "clang")


def test_clang_build_is_identified_as_clang(clang_library: Path, c_kernel_library: Path) -> None:
    assert any("clang version" in line for line in _comment_strings(clang_library))
    assert not any("clang version" in line for line in _comment_strings(c_kernel_library))


def test_clang_kernel_runs_on_the_engine(clang_library: Path) -> None:
    scale = bridge_cffi.to_mxnet_func(bridge_cffi.load_c_kernel(clang_library), const_loc=[0])
    x = mx.nd.array(np.arange(12, dtype="float32"))
    out = mx.nd.zeros((12,))
    scale(x, out, -2.0)
    np.testing.assert_array_equal(out.asnumpy(), np.arange(12) * -2.0)


def test_clang_kernel_reads_views_through_byte_offset(clang_library: Path) -> None:
    scale = bridge_cffi.to_mxnet_func(bridge_cffi.load_c_kernel(clang_library), const_loc=[0])
    x = mx.nd.array(np.arange(20, dtype="float32"))
    scale(x[2:9], x[11:18], 3.0)
    expected = np.arange(20, dtype="float32")
    expected[11:18] = expected[2:9] * 3
    np.testing.assert_array_equal(x.asnumpy(), expected)


def test_gcc_and_clang_kernels_chain_in_one_process(c_kernel_library: Path,
                                                    clang_library: Path) -> None:
    by_gcc = bridge_cffi.to_mxnet_func(bridge_cffi.load_c_kernel(c_kernel_library), const_loc=[0])
    by_clang = bridge_cffi.to_mxnet_func(bridge_cffi.load_c_kernel(clang_library), const_loc=[0])
    x = mx.nd.ones((100,))
    middle = mx.nd.empty((100,))
    for _ in range(5):  # pipelined, no waits: each call reads what the previous one wrote
        by_gcc(x, middle, 2.0)
        by_clang(middle, x, 1.5)
    np.testing.assert_array_equal(x.asnumpy(), np.full(100, 3.0**5))


def test_clang_kernel_error_reaches_the_wait(clang_library: Path) -> None:
    failing = bridge_cffi.to_mxnet_func(
        bridge_cffi.load_c_kernel(clang_library, "failing_kernel_create"), const_loc=[0]
    )
    out = mx.nd.zeros((2,))
    failing(mx.nd.ones((2,)), out, 1.5)
    with pytest.raises(mx.base.MXNetError, match=r"scale kernel refused: 1.5"):
        out.asnumpy()
    mx.nd.waitall()


def test_clang_kernel_with_newer_minor_version_is_accepted(clang_library: Path) -> None:
    kernel = bridge_cffi.load_c_kernel(clang_library, "newer_minor_create")
    scale = bridge_cffi.to_mxnet_func(kernel, const_loc=[0])
    out = mx.nd.zeros((3,))
    scale(mx.nd.ones((3,)), out, 4.0)
    np.testing.assert_array_equal(out.asnumpy(), [4, 4, 4])


def test_clang_kernel_with_other_major_version_is_refused(clang_library: Path) -> None:
    with pytest.raises(bridge_cffi.BridgeKernelError, match="ABI major version 2 is not supported"):
        bridge_cffi.load_c_kernel(clang_library, "wrong_major_create")


def test_clang_kernel_with_too_small_struct_is_refused(clang_library: Path) -> None:
    with pytest.raises(bridge_cffi.BridgeKernelError, match="struct_size is 8 bytes, smaller than"):
        bridge_cffi.load_c_kernel(clang_library, "small_struct_create")
