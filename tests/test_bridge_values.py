"""Dtypes, scalars, 2-D arrays and slices reach the function as MXNet holds them."""

from __future__ import annotations

import mxnet as mx
import numpy as np
import pytest

import bridge_cffi
from conftest import needs_mxnet_1_6
from kernels_tvm import add_scalar, bool_to_float, scalars_to_array, scale_2d

DTYPES = ["float16", "float32", "float64", "int8", "uint8", "int32", "int64"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_round_trips_through_the_function(dtype: str) -> None:
    f = bridge_cffi.to_mxnet_func(add_scalar(dtype), const_loc=[0])
    source = np.arange(12).astype(dtype)
    a = mx.nd.array(source, dtype=dtype)
    out = mx.nd.zeros((12,), dtype=dtype)
    f(a, out, 3)
    result = out.asnumpy()
    assert result.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(result, (source + np.array(3).astype(dtype)).astype(dtype))


@needs_mxnet_1_6
def test_bool_arrays_arrive_as_byte_sized_bools() -> None:
    f = bridge_cffi.to_mxnet_func(bool_to_float(), const_loc=[0])
    mask = mx.nd.array(np.array([1, 0, 1, 1, 0]), dtype="bool")
    out = mx.nd.zeros((5,))
    f(mask, out)
    np.testing.assert_array_equal(out.asnumpy(), [1, 0, 1, 1, 0])


@pytest.mark.parametrize(
    ("i", "f", "b"),
    [(7, 2.5, True), (-(2**40), -0.125, False), (0, 1e300, True),
     (np.int32(5), np.float32(0.5), np.bool_(False))],
)
def test_int_float_and_bool_scalars_pass_through(i: int, f: float, b: bool) -> None:
    bridged = bridge_cffi.to_mxnet_func(scalars_to_array())
    out = mx.nd.zeros((3,), dtype="float64")
    bridged(out, i, f, b)
    np.testing.assert_array_equal(out.asnumpy(), [float(i), float(f), float(bool(b))])


def test_2d_arrays_keep_their_shape() -> None:
    f = bridge_cffi.to_mxnet_func(scale_2d(), const_loc=[0])
    source = np.arange(12, dtype="float32").reshape(3, 4)
    a = mx.nd.array(source)
    out = mx.nd.zeros((3, 4))
    f(a, out, 2.0)
    np.testing.assert_array_equal(out.asnumpy(), source * 2)


def test_row_slices_are_read_and_written_at_their_offsets() -> None:
    f = bridge_cffi.to_mxnet_func(scale_2d(), const_loc=[0])
    source = np.arange(40, dtype="float32").reshape(8, 5)
    a = mx.nd.array(source)
    out = mx.nd.zeros((8, 5))
    f(a[2:5], out[5:8], -1.0)  # a non-zero byte offset on both sides
    expected = np.zeros((8, 5), dtype="float32")
    expected[5:8] = -source[2:5]
    np.testing.assert_array_equal(out.asnumpy(), expected)
    np.testing.assert_array_equal(a.asnumpy(), source)


def test_single_row_index_is_a_view_at_its_offset() -> None:
    f = bridge_cffi.to_mxnet_func(add_scalar("float32"), const_loc=[0])
    a = mx.nd.array(np.arange(12, dtype="float32").reshape(3, 4))
    out = mx.nd.zeros((3, 4))
    f(a[1], out[2], 100)
    np.testing.assert_array_equal(out.asnumpy()[2], np.arange(4, 8) + 100)
    np.testing.assert_array_equal(out.asnumpy()[:2], 0)


def test_misaligned_view_reaches_an_aligned_only_kernel_staged_with_the_right_answer() -> None:
    from kernels_tvm import add_into_aligned_only

    f = bridge_cffi.to_mxnet_func(add_into_aligned_only(), const_loc=[0, 1])
    x = mx.nd.array(np.arange(40, dtype="float32"))
    f(x[1:11], x[11:21], x[21:31])  # data 4 bytes past an aligned address: staged
    expected = np.arange(40, dtype="float32")
    expected[21:31] = expected[1:11] + expected[11:21]
    np.testing.assert_array_equal(x.asnumpy(), expected)


@pytest.mark.parametrize("k", [2**53 + 1, 2**62 + 3, -(2**63), 2**63 - 1, -(2**53) - 7])
def test_ints_beyond_double_precision_arrive_exactly(k: int) -> None:
    f = bridge_cffi.to_mxnet_func(add_scalar("int64"), const_loc=[0])
    out = mx.nd.zeros((2,), dtype="int64")
    f(mx.nd.zeros((2,), dtype="int64"), out, k)
    assert out.asnumpy().tolist() == [k, k]
