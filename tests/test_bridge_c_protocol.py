"""Kernels written in plain C to the public header: versions and sizes are checked first."""

from __future__ import annotations

from pathlib import Path

import mxnet as mx
import numpy as np
import pytest

import bridge_cffi


def test_c_kernel_runs_on_the_engine(c_kernel_library: Path) -> None:
    scale = bridge_cffi.to_mxnet_func(bridge_cffi.load_c_kernel(c_kernel_library), const_loc=[0])
    assert scale.name == "c_scale"
    source = mx.nd.array(np.arange(10, dtype="float32"))
    out = mx.nd.zeros((10,))
    scale(source, out, 0.5)
    np.testing.assert_array_equal(out.asnumpy(), np.arange(10) * 0.5)


def test_c_kernel_reads_views_through_byte_offset(c_kernel_library: Path) -> None:
    scale = bridge_cffi.to_mxnet_func(bridge_cffi.load_c_kernel(c_kernel_library), const_loc=[0])
    x = mx.nd.array(np.arange(20, dtype="float32"))
    scale(x[3:8], x[13:18], 10.0)  # one variable, misaligned views, read and written
    expected = np.arange(20, dtype="float32")
    expected[13:18] = expected[3:8] * 10
    np.testing.assert_array_equal(x.asnumpy(), expected)


def test_newer_minor_version_with_a_larger_struct_is_accepted(c_kernel_library: Path) -> None:
    kernel = bridge_cffi.load_c_kernel(c_kernel_library, "newer_minor_create")
    scale = bridge_cffi.to_mxnet_func(kernel, const_loc=[0])
    out = mx.nd.zeros((3,))
    scale(mx.nd.ones((3,)), out, 4.0)
    np.testing.assert_array_equal(out.asnumpy(), [4, 4, 4])


def test_other_major_version_is_refused(c_kernel_library: Path) -> None:
    with pytest.raises(bridge_cffi.BridgeKernelError, match="ABI major version 2 is not supported"):
        bridge_cffi.load_c_kernel(c_kernel_library, "wrong_major_create")


def test_struct_size_too_small_is_refused(c_kernel_library: Path) -> None:
    with pytest.raises(bridge_cffi.BridgeKernelError, match="struct_size is 8 bytes, smaller than"):
        bridge_cffi.load_c_kernel(c_kernel_library, "small_struct_create")


def test_missing_factory_symbol_is_a_clear_error(c_kernel_library: Path) -> None:
    with pytest.raises(TypeError, match="exports no function 'no_such_kernel'"):
        bridge_cffi.load_c_kernel(c_kernel_library, "no_such_kernel")
