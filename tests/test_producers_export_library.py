"""Producer (b): a TVM module exported with export_library, loaded back with load_module.

The loaded module is a separate shared library (linked by the system compiler through
tvm.contrib.cc), found again by path: what a deployment that ships compiled kernels does.
"""

from __future__ import annotations

from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
import tvm

import bridge_cffi
from bridge_cffi.producers.generations import exported_library_generation
from kernels_tvm import add_into, scaled_add


@pytest.fixture(scope="module")
def library_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("export_library")


def _export_and_load(module: tvm.runtime.Module, path: Path) -> tvm.runtime.Module:
    module.export_library(str(path))
    assert path.is_file()
    return tvm.runtime.load_module(str(path))


def test_exported_module_runs_on_the_engine(library_dir: Path) -> None:
    loaded = _export_and_load(scaled_add(), library_dir / "scaled_add.so")
    scaled = bridge_cffi.to_mxnet_func(loaded, const_loc=[0, 1])
    x = mx.nd.array(np.arange(16, dtype="float32"))
    y = mx.nd.ones((16,))
    z = mx.nd.empty((16,))
    scaled(x, y, z, 3.0)
    np.testing.assert_allclose(z.asnumpy(), (np.arange(16) + 1) * 3.0)


def test_exported_module_survives_dropping_every_python_reference(library_dir: Path) -> None:
    scaled = bridge_cffi.to_mxnet_func(
        _export_and_load(scaled_add(), library_dir / "dropped.so"), const_loc=[0, 1]
    )
    x, y, z = mx.nd.ones((64,)), mx.nd.ones((64,)), mx.nd.empty((64,))
    x += 1  # a pending native write the bridged read must wait for
    scaled(x, y, z, 2.0)
    del scaled, x, y  # the pending operation holds the function and its arrays
    np.testing.assert_allclose(z.asnumpy(), np.full(64, 6.0))
    assert bridge_cffi.wait_until_released()


def test_exported_module_with_offset_buffers_accepts_views(library_dir: Path) -> None:
    add = bridge_cffi.to_mxnet_func(
        _export_and_load(add_into(), library_dir / "add_into.so"), const_loc=[0, 1]
    )
    x = mx.nd.array(np.arange(30, dtype="float32"))
    add(x[1:6], x[7:12], x[20:25])  # three views of one variable: pushed once, written
    expected = np.arange(30, dtype="float32")
    expected[20:25] = expected[1:6] + expected[7:12]
    np.testing.assert_allclose(x.asnumpy(), expected)


def test_exported_module_shape_error_reaches_the_wait(library_dir: Path) -> None:
    add = bridge_cffi.to_mxnet_func(
        _export_and_load(add_into(), library_dir / "add_into_errors.so"), const_loc=[0, 1]
    )
    out = mx.nd.zeros((4,))
    add(mx.nd.ones((4,)), mx.nd.ones((5,)), out)
    with pytest.raises(mx.base.MXNetError, match=r"main failed: .*shape"):
        out.asnumpy()
    mx.nd.waitall()


def test_exported_library_path_is_bridged_directly(library_dir: Path) -> None:
    # The path itself: its exports (__tvm_ffi_main) say which generation wrote it.
    path = library_dir / "scaled_add_by_path.so"
    scaled_add().export_library(str(path))
    assert exported_library_generation(path) == "tvm-ffi"
    scaled = bridge_cffi.to_mxnet_func(path, const_loc=[0, 1])
    x = mx.nd.array(np.arange(16, dtype="float32"))
    z = mx.nd.empty((16,))
    scaled(x, mx.nd.ones((16,)), z, 2.0)
    np.testing.assert_allclose(z.asnumpy(), (np.arange(16) + 1) * 2.0)


def test_protocol_kernel_library_path_is_loaded_as_a_c_kernel(c_kernel_library: Path) -> None:
    assert exported_library_generation(c_kernel_library) == "bridge-protocol"
    kernel = bridge_cffi.to_mxnet_func(str(c_kernel_library)).kernel
    assert kernel.name == "c_scale"


def test_a_library_that_is_no_kernel_is_refused_naming_what_was_looked_for(
    tmp_path: Path,
) -> None:
    from abi_native_builds import build_shared

    library = build_shared(tmp_path, "libplain.so", "int plain(void) { return 0; }\n")
    with pytest.raises(bridge_cffi.BridgeTypeError, match=r"__tvm_main__.*bridge_kernel_create"):
        bridge_cffi.to_mxnet_func(library)
    with pytest.raises(bridge_cffi.BridgeTypeError, match="no such file exists"):
        bridge_cffi.to_mxnet_func(tmp_path / "missing.so")
    not_elf = tmp_path / "not_elf.so"
    not_elf.write_text("text")
    with pytest.raises(bridge_cffi.BridgeTypeError, match="func: cannot read the library"):
        bridge_cffi.to_mxnet_func(not_elf)
