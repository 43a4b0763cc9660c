"""Producer (a): C++ compiled at test time by tvm_ffi.cpp.load_inline (system compiler, ninja).

The function is a tvm-ffi Function from a shared library the system's g++ built, not TVM's
compiler: the bridge drives it through tvm-ffi's C ABI like any other tvm_ffi.Function.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mxnet as mx
import numpy as np
import pytest

import bridge_cffi

tvm_ffi_cpp = pytest.importorskip("tvm_ffi.cpp", reason="this apache-tvm-ffi has no tvm_ffi.cpp")

# TensorView::data_ptr() is the DLTensor's data without byte_offset: add it, so views work.
_CPP_SOURCE = r"""
#include <string>

namespace {
template <typename T>
T* at(tvm::ffi::TensorView tensor) {
  return reinterpret_cast<T*>(static_cast<char*>(tensor.data_ptr()) + tensor.byte_offset());
}
}  // namespace

void affine(tvm::ffi::TensorView x, tvm::ffi::TensorView y, double scale, int64_t shift) {
  DLDataType f32{kDLFloat, 32, 1};
  TVM_FFI_ICHECK(x.ndim() == 1 && y.ndim() == 1) << "affine: x and y must be 1-D";
  TVM_FFI_ICHECK(x.dtype() == f32 && y.dtype() == f32) << "affine: x and y must be float32";
  TVM_FFI_ICHECK(x.size(0) == y.size(0))
      << "affine: length mismatch " << std::to_string(x.size(0)) << " vs "
      << std::to_string(y.size(0));
  const float* in = at<const float>(x);
  float* out = at<float>(y);
  for (int64_t i = 0; i < x.size(0); ++i) out[i] = static_cast<float>(in[i] * scale + shift);
}
"""


@pytest.fixture(scope="module")
def inline_module(tmp_path_factory: pytest.TempPathFactory) -> Any:  # a tvm_ffi Module
    """The module, built into a fresh directory (no cache shared with other runs)."""
    build_dir: Path = tmp_path_factory.mktemp("load_inline")
    return tvm_ffi_cpp.load_inline(
        name="bridge_producers_affine",
        cpp_sources=_CPP_SOURCE,
        functions=["affine"],
        build_directory=str(build_dir),
    )


def test_load_inline_function_runs_on_the_engine(inline_module: Any) -> None:
    affine = bridge_cffi.to_mxnet_func(inline_module["affine"], const_loc=[0], name="affine")
    x = mx.nd.array(np.arange(8, dtype="float32"))
    y = mx.nd.zeros((8,))
    affine(x, y, 2.5, 3)
    np.testing.assert_allclose(y.asnumpy(), np.arange(8) * 2.5 + 3)


def test_load_inline_function_is_ordered_with_native_operators(inline_module: Any) -> None:
    affine = bridge_cffi.to_mxnet_func(inline_module["affine"], const_loc=[0])
    x = mx.nd.ones((1000,))
    y = mx.nd.empty((1000,))
    x += 1  # native write, then the bridged read, then native reads of y: no waits between
    affine(x, y, 10.0, 0)
    z = y * 2
    np.testing.assert_allclose(z.asnumpy(), np.full(1000, 40.0))


def test_load_inline_function_reads_and_writes_views(inline_module: Any) -> None:
    affine = bridge_cffi.to_mxnet_func(inline_module["affine"], const_loc=[0])
    x = mx.nd.array(np.arange(20, dtype="float32"))
    affine(x[1:6], x[11:16], -1.0, 100)  # one engine variable, misaligned views
    expected = np.arange(20, dtype="float32")
    expected[11:16] = 100 - expected[1:6]
    np.testing.assert_allclose(x.asnumpy(), expected)


def test_load_inline_check_failure_reaches_the_wait(inline_module: Any) -> None:
    affine = bridge_cffi.to_mxnet_func(inline_module["affine"], const_loc=[0])
    y = mx.nd.zeros((3,))
    affine(mx.nd.ones((4,)), y, 1.0, 0)
    with pytest.raises(mx.base.MXNetError, match="affine: length mismatch 4 vs 3"):
        y.asnumpy()
    mx.nd.waitall()
    assert bridge_cffi.wait_until_released()
