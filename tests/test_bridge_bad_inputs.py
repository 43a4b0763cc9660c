"""Bad input raises a clear exception naming the argument, before anything is pushed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest

import bridge_cffi
from bridge_cffi.mxnet.interface import MxnetFunc
from kernels_tvm import add_into, scaled_add


@pytest.fixture
def scaled() -> MxnetFunc:
    return bridge_cffi.to_mxnet_func(scaled_add(), const_loc=[0, 1])


def _wrap_unchecked(func: object, **options: object) -> object:
    """``to_mxnet_func`` as code without a type checker calls it: the tests below pass what its
    signature rules out, to check that it is refused at run time too.
    """
    wrap: Callable[..., object] = bridge_cffi.to_mxnet_func
    return wrap(func, **options)


def _pushed() -> int:
    return int(bridge_cffi.read_counters()["ops_pushed"])


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ("text", ("argument 2: expected mx.nd.NDArray, mx.np.ndarray, int, float or bool, "
                  "got builtins.str")),
        (None, "argument 2: .*got builtins.NoneType; None is not"),
        (np.zeros(4, dtype="float32"), "argument 2: .*got numpy.ndarray; convert numpy arrays"),
        ([1.0, 2.0], "argument 2: .*got builtins.list; pass arrays as mx.nd.array"),
        (b"bytes", "argument 2: .*got builtins.bytes"),
        (1 + 2j, "argument 2: .*got builtins.complex"),
    ],
)
def test_wrong_type_is_a_type_error_naming_the_position(
    scaled: MxnetFunc, bad: object, expected: str
) -> None:
    x, y = mx.nd.ones((4,)), mx.nd.ones((4,))
    before = _pushed()
    with pytest.raises(TypeError, match=expected):
        scaled(x, y, bad, 1.0)
    assert _pushed() == before


def test_int_too_large_for_int64_is_a_value_error(scaled: MxnetFunc) -> None:
    with pytest.raises(ValueError, match="argument 3: the int 9223372036854775808 does not fit"):
        scaled(mx.nd.ones((4,)), mx.nd.ones((4,)), mx.nd.ones((4,)), 2**63)


@pytest.mark.parametrize("stype", ["csr", "row_sparse"])
def test_sparse_array_is_refused_before_the_push(scaled: MxnetFunc,
                                                 stype: str) -> None:
    sparse = mx.nd.zeros((4, 4)).tostype(stype)
    before = _pushed()
    with pytest.raises(TypeError, match="argument 1: expected a dense NDArray"):
        scaled(mx.nd.ones((4, 4)), sparse, mx.nd.ones((4, 4)), 1.0)
    assert _pushed() == before


def test_arrays_on_different_devices_are_refused(scaled: MxnetFunc) -> None:
    before = _pushed()
    with pytest.raises(ValueError, match=r"argument 2 is on device .* but argument 0 is on"):
        scaled(mx.nd.ones((4,)), mx.nd.ones((4,)), mx.nd.ones((4,), ctx=mx.cpu(1)), 1.0)
    assert _pushed() == before


def test_arrays_all_on_another_cpu_device_run_there(scaled: MxnetFunc) -> None:
    ctx = mx.cpu(1)
    z = mx.nd.zeros((4,), ctx=ctx)
    scaled(mx.nd.ones((4,), ctx=ctx), mx.nd.ones((4,), ctx=ctx), z, 2.0)
    np.testing.assert_array_equal(z.asnumpy(), [4, 4, 4, 4])


def test_wrong_argument_count_is_refused_where_the_arity_is_known(c_kernel_library: Path) -> None:
    scale = bridge_cffi.to_mxnet_func(bridge_cffi.load_c_kernel(c_kernel_library), const_loc=[0])
    assert scale.arity == 3
    before = _pushed()
    with pytest.raises(TypeError, match="c_scale: takes 3 arguments, got 2"):
        scale(mx.nd.ones((4,)), mx.nd.ones((4,)))
    assert _pushed() == before


def test_const_loc_out_of_range_is_refused_when_the_arity_is_known(c_kernel_library: Path) -> None:
    with pytest.raises(ValueError,
                       match=r"const_loc: position\(s\) \[5\] out of range .* 3 arguments"):
        bridge_cffi.to_mxnet_func(bridge_cffi.load_c_kernel(c_kernel_library), const_loc=[0, 5])


def test_const_loc_out_of_range_is_refused_at_the_call_otherwise() -> None:
    f = bridge_cffi.to_mxnet_func(add_into(), const_loc=[0, 7])
    before = _pushed()
    with pytest.raises(ValueError, match="const_loc: position 7 out of range for a call with 3"):
        f(mx.nd.ones((2,)), mx.nd.ones((2,)), mx.nd.ones((2,)))
    assert _pushed() == before


def test_const_loc_naming_a_scalar_is_refused() -> None:
    f = bridge_cffi.to_mxnet_func(scaled_add(), const_loc=[0, 1, 3])
    with pytest.raises(ValueError, match="const_loc: argument 3 is a float"):
        f(mx.nd.ones((2,)), mx.nd.ones((2,)), mx.nd.ones((2,)), 1.0)


@pytest.mark.parametrize(
    ("const_loc", "error", "expected"),
    [
        ([0, 0], ValueError, r"const_loc: position\(s\) \[0\] listed more than once"),
        ([0, -1], ValueError, "const_loc: positions start at 0, got -1"),
        ([0, 1.5], TypeError, "const_loc: expected integer positions, got 1.5"),
        ([True], TypeError, "const_loc: expected integer positions, got True"),
        ("01", TypeError, "const_loc: expected a list of argument positions, got str"),
        (3, TypeError, "const_loc: expected a list of argument positions, got int"),
    ],
)
def test_bad_const_loc_is_refused_at_wrap_time(const_loc: object, error: type[Exception],
                                               expected: str) -> None:
    with pytest.raises(error, match=expected):
        _wrap_unchecked(scaled_add(), const_loc=const_loc)


def test_const_loc_in_any_order_is_accepted() -> None:
    f = bridge_cffi.to_mxnet_func(scaled_add(), const_loc=(1, 0))
    z = mx.nd.zeros((2,))
    f(mx.nd.ones((2,)), mx.nd.ones((2,)), z, 1.5)
    np.testing.assert_array_equal(z.asnumpy(), [3, 3])


@pytest.mark.parametrize(
    ("func", "expected"),
    [
        ("main", "got 'main', taken as the path of an exported library, but no such file exists"),
        (42, "got builtins.int"),
    ],
)
def test_unsupported_func_is_a_type_error(func: object, expected: str) -> None:
    with pytest.raises(TypeError, match=f"func: .*{expected}"):
        bridge_cffi.to_mxnet_func(func)


def test_bad_name_and_priority_are_type_errors() -> None:
    with pytest.raises(TypeError, match="priority: expected an int"):
        _wrap_unchecked(scaled_add(), priority="high")
    with pytest.raises(TypeError, match="name: expected a str"):
        _wrap_unchecked(scaled_add(), name=7)


def test_a_bad_call_loses_nothing_already_pushed(scaled: MxnetFunc) -> None:
    x = mx.nd.ones((1000,))
    z = mx.nd.zeros((1000,))
    scaled(x, x, z, 5.0)
    with pytest.raises(TypeError):
        scaled(x, x, "z", 5.0)
    np.testing.assert_array_equal(z.asnumpy(), np.full(1000, 10.0))
