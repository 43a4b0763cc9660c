"""Un-built TVM code: read/write sets, outputs and their shapes are inferred from the PrimFunc."""

from __future__ import annotations

from functools import cache

import mxnet as mx
import numpy as np
import pytest
import tvm
from hypothesis import given, settings
from hypothesis import strategies as st
from tvm import te

import bridge_cffi
from bridge_cffi.unbuilt_tvm.access import analyse
from bridge_cffi.unbuilt_tvm.front_end import InferredFunction


def script(source: str) -> tvm.tirx.PrimFunc:
    return tvm.script.from_source(source)


@cache
def scaled_add_te() -> tvm.tirx.PrimFunc:
    """z = (x + y) * s with a symbolic length; params (x, y, z, s)."""
    n = te.var("n")
    x = te.placeholder((n,), name="x")
    y = te.placeholder((n,), name="y")
    s = te.var("s", dtype="float32")
    z = te.compute((n,), lambda i: (x[i] + y[i]) * s, name="z")
    return te.create_prim_func([x, y, z, s])


STATIC_SOURCE = """
@T.prim_func
def affine(a: T.handle, w: T.handle, out: T.handle):
    A = T.match_buffer(a, (4, 3), "float32", offset_factor=1)
    W = T.match_buffer(w, (3,), "float32", offset_factor=1)
    O = T.match_buffer(out, (4, 3), "float32", offset_factor=1)
    for i, j in T.grid(4, 3):
        O[i, j] = A[i, j] * W[j]
"""

# Several outputs of different shapes and dtypes; one size is an expression of the inputs'.
SPLIT_SOURCE = """
@T.prim_func(s_tir=True)
def stats(a: T.handle, total: T.handle, doubled: T.handle, positive: T.handle):
    m = T.int64()
    n = T.int64()
    A = T.match_buffer(a, (m, n), "float32", offset_factor=1)
    S = T.match_buffer(total, (m,), "float64", offset_factor=1)
    D = T.match_buffer(doubled, (m, n * 2), "float32", offset_factor=1)
    P = T.match_buffer(positive, (m, n), "int32", offset_factor=1)
    for i, j in T.grid(m, n):
        with T.sblock("total"):
            vi, vj = T.axis.remap("SR", [i, j])
            with T.init():
                S[vi] = T.float64(0)
            S[vi] = S[vi] + T.Cast("float64", A[vi, vj])
    for i, j in T.grid(m, n):
        with T.sblock("copies"):
            vi, vj = T.axis.remap("SS", [i, j])
            D[vi, vj] = A[vi, vj]
            D[vi, vj + n] = A[vi, vj]
            P[vi, vj] = T.Select(A[vi, vj] > T.float32(0), 1, 0)
"""

# A hand-written accumulation without T.init: the body loads what it stores, so the buffer is
# in place (the caller passes it, e.g. zeroed) rather than an output.
ACCUMULATE_SOURCE = """
@T.prim_func
def row_sums(a: T.handle, total: T.handle):
    m = T.int64()
    n = T.int64()
    A = T.match_buffer(a, (m, n), "float32", offset_factor=1)
    S = T.match_buffer(total, (m,), "float32", offset_factor=1)
    for i, j in T.grid(m, n):
        S[i] = S[i] + A[i, j]
"""

# x is updated in place (read and written); y is an output; k is a scalar.
IN_PLACE_SOURCE = """
@T.prim_func
def bump(x: T.handle, y: T.handle, k: T.float32):
    n = T.int64()
    X = T.match_buffer(x, (n,), "float32", offset_factor=1)
    Y = T.match_buffer(y, (n,), "float32", offset_factor=1)
    for i in range(n):
        Y[i] = X[i]
        X[i] = X[i] + k
"""

# A size given by a scalar parameter, not by any input array.
ARANGE_SOURCE = """
@T.prim_func
def arange(out: T.handle, count: T.int64):
    O = T.match_buffer(out, (count,), "int64", offset_factor=1)
    for i in range(count):
        O[i] = i
"""

OPAQUE_SOURCE = """
@T.prim_func
def opaque(a: T.handle, out: T.handle):
    n = T.int64()
    A = T.match_buffer(a, (n,), "float32", offset_factor=1)
    O = T.match_buffer(out, (n,), "float32", offset_factor=1)
    T.evaluate(T.call_extern("int32", "some_c_function", A.data, n))
    for i in range(n):
        O[i] = A[i]
"""


@cache
def split_function() -> InferredFunction:
    f = bridge_cffi.to_mxnet_func(script(SPLIT_SOURCE))
    assert isinstance(f, InferredFunction)
    return f


def access_of(func: object) -> dict[str, str]:
    return {p.name: p.access for p in analyse(func)}


def test_loaded_buffers_are_const_and_stored_ones_are_outputs() -> None:
    assert access_of(scaled_add_te()) == {"x": "read", "y": "read", "z": "write", "s": "scalar"}
    f = bridge_cffi.to_mxnet_func(scaled_add_te())
    assert isinstance(f, InferredFunction) and isinstance(f, bridge_cffi.BridgedFunction)
    assert f.const_loc == frozenset({0, 1})
    assert f.outputs == (2,)


def test_call_without_outputs_allocates_and_returns_them_at_once() -> None:
    f = bridge_cffi.to_mxnet_func(scaled_add_te(), name="scaled_add")
    x = mx.nd.array(np.arange(10, dtype="float32"))
    z = f(x, mx.nd.ones(10), 3.0)
    assert isinstance(z, mx.nd.NDArray) and not isinstance(z, mx.np.ndarray)
    assert z.shape == (10,) and z.dtype == np.float32
    np.testing.assert_allclose(z.asnumpy(), (np.arange(10) + 1) * 3.0)


def test_call_with_every_argument_behaves_like_a_bridged_function() -> None:
    f = bridge_cffi.to_mxnet_func(scaled_add_te())
    z = mx.nd.zeros(5)
    assert f(mx.nd.ones(5), mx.nd.ones(5), z, 2.0) is None
    np.testing.assert_allclose(z.asnumpy(), [4.0] * 5)


def test_symbolic_shapes_are_bound_from_the_inputs_for_each_call() -> None:
    f = bridge_cffi.to_mxnet_func(scaled_add_te())
    for n in (1, 7, 1000):
        z = f(mx.nd.ones(n), mx.nd.ones(n), 1.5)
        assert z.shape == (n,)
        np.testing.assert_allclose(z.asnumpy(), np.full(n, 3.0))


def test_static_shapes_allocate_the_declared_shape_and_check_inputs() -> None:
    f = bridge_cffi.to_mxnet_func(script(STATIC_SOURCE))
    a = np.arange(12, dtype="float32").reshape(4, 3)
    out = f(mx.nd.array(a), mx.nd.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(out.asnumpy(), a * [1.0, 2.0, 3.0])
    with pytest.raises(bridge_cffi.BridgeValueError,
                       match=r"argument 0 \(A\): dimension 1 must be 3"):
        f(mx.nd.ones((4, 4)), mx.nd.ones(3))


def test_several_outputs_are_returned_as_a_tuple_in_parameter_order() -> None:
    f = bridge_cffi.to_mxnet_func(script(SPLIT_SOURCE))
    assert isinstance(f, InferredFunction)  # un-built code: .outputs is InferredFunction's
    assert f.const_loc == frozenset({0}) and f.outputs == (1, 2, 3)
    a = np.array([[1.0, -2.0, 3.0], [-4.0, 5.0, 0.5]], dtype="float32")
    total, doubled, positive = f(mx.nd.array(a))
    assert (total.shape, total.dtype) == ((2,), np.float64)
    assert (doubled.shape, doubled.dtype) == ((2, 6), np.float32)
    assert (positive.shape, positive.dtype) == ((2, 3), np.int32)
    np.testing.assert_allclose(total.asnumpy(), a.sum(axis=1), rtol=1e-6)
    np.testing.assert_array_equal(doubled.asnumpy(), np.concatenate([a, a], axis=1))
    np.testing.assert_array_equal(positive.asnumpy(), (a > 0).astype("int32"))


def test_a_buffer_read_and_written_is_in_place_and_passed_by_the_caller() -> None:
    assert access_of(script(IN_PLACE_SOURCE)) == {"X": "readwrite", "Y": "write", "k": "scalar"}
    f = bridge_cffi.to_mxnet_func(script(IN_PLACE_SOURCE))
    assert isinstance(f, InferredFunction)
    assert f.const_loc == frozenset() and f.outputs == (1,)
    x = mx.nd.array([1.0, 2.0, 3.0])
    before = f(x, 10.0)  # y allocated; x updated in place
    np.testing.assert_allclose(before.asnumpy(), [1.0, 2.0, 3.0])
    np.testing.assert_allclose(x.asnumpy(), [11.0, 12.0, 13.0])


def test_in_place_update_is_ordered_after_earlier_native_reads() -> None:
    f = bridge_cffi.to_mxnet_func(script(IN_PLACE_SOURCE))
    x = mx.nd.ones(100_000)
    snapshot = x * 1.0  # native read of x, pushed before the in-place write
    f(x, 1.0)
    np.testing.assert_allclose(snapshot.asnumpy()[:3], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(x.asnumpy()[:3], [2.0, 2.0, 2.0])


def test_reduction_accumulator_is_an_output_not_an_in_place_buffer() -> None:
    # te.sum lowers to a block with T.init(): C[i] = C[i] + ..., whose self-load is not a read.
    n = te.var("n")
    k = te.reduce_axis((0, 4), "k")
    a = te.placeholder((n, 4), name="a")
    b = te.placeholder((4,), name="b")
    c = te.compute((n,), lambda i: te.sum(a[i, k] * b[k], axis=k), name="c")
    f = bridge_cffi.to_mxnet_func(te.create_prim_func([a, b, c]))
    assert isinstance(f, InferredFunction)
    assert f.outputs == (2,)
    matrix = np.arange(12, dtype="float32").reshape(3, 4)
    np.testing.assert_allclose(f(mx.nd.array(matrix), mx.nd.ones(4)).asnumpy(), matrix.sum(axis=1))


def test_an_accumulation_without_init_is_in_place() -> None:
    assert access_of(script(ACCUMULATE_SOURCE)) == {"A": "read", "S": "readwrite"}
    f = bridge_cffi.to_mxnet_func(script(ACCUMULATE_SOURCE))
    assert isinstance(f, InferredFunction)
    assert f.outputs == ()
    total = mx.nd.ones(2)
    f(mx.nd.ones((2, 5)), total)
    np.testing.assert_allclose(total.asnumpy(), [6.0, 6.0])


def test_a_size_given_by_a_scalar_argument_is_bound_from_it() -> None:
    f = bridge_cffi.to_mxnet_func(script(ARANGE_SOURCE))
    out = f(6)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out.asnumpy(), np.arange(6))


def test_an_output_size_no_input_fixes_asks_for_the_output() -> None:
    source = """
@T.prim_func
def fill(out: T.handle, value: T.float32):
    n = T.int64()
    O = T.match_buffer(out, (n,), "float32", offset_factor=1)
    for i in range(n):
        O[i] = value
"""
    f = bridge_cffi.to_mxnet_func(script(source))
    with pytest.raises(bridge_cffi.BridgeValueError, match=r"output O .*not fixed by any input"):
        f(1.0)
    out = mx.nd.empty(3)
    f(out, 2.5)
    np.testing.assert_allclose(out.asnumpy(), [2.5] * 3)


def test_an_irmodule_is_accepted_and_its_function_found_by_name() -> None:
    module = tvm.IRModule({"affine": script(STATIC_SOURCE)})
    f = bridge_cffi.to_mxnet_func(module)
    assert f.name == "affine"
    np.testing.assert_allclose(f(mx.nd.ones((4, 3)), mx.nd.ones(3) * 2).asnumpy(),
                               np.full((4, 3), 2.0))


def test_an_irmodule_with_several_functions_and_no_main_is_refused() -> None:
    module = tvm.IRModule({"affine": script(STATIC_SOURCE), "bump": script(IN_PLACE_SOURCE)})
    with pytest.raises(bridge_cffi.BridgeValueError,
                       match=r"several PrimFuncs \['affine', 'bump'\]"):
        bridge_cffi.to_mxnet_func(module)


def test_explicit_const_loc_agreeing_with_the_analysis_is_accepted() -> None:
    f = bridge_cffi.to_mxnet_func(scaled_add_te(), const_loc=[0, 1])
    assert f.const_loc == frozenset({0, 1})
    np.testing.assert_allclose(f(mx.nd.ones(2), mx.nd.ones(2), 1.0).asnumpy(), [2.0, 2.0])


def test_const_loc_naming_a_written_buffer_says_which_and_why() -> None:
    with pytest.raises(bridge_cffi.BridgeValueError,
                       match=r"argument 2 \(z\) is written by the function \(stored at 1 site"):
        bridge_cffi.to_mxnet_func(scaled_add_te(), const_loc=[0, 1, 2])
    with pytest.raises(bridge_cffi.BridgeValueError,
                       match=r"argument 0 \(X\) is written .*updated in place"):
        bridge_cffi.to_mxnet_func(script(IN_PLACE_SOURCE), const_loc=[0])


def test_const_loc_leaving_out_a_read_only_buffer_says_which_and_why() -> None:
    with pytest.raises(bridge_cffi.BridgeValueError,
                       match=r"argument 1 \(y\) is only read by the function \(loaded at 1 site"):
        bridge_cffi.to_mxnet_func(scaled_add_te(), const_loc=[0])


def test_const_loc_naming_a_scalar_or_a_missing_position_is_refused() -> None:
    with pytest.raises(bridge_cffi.BridgeValueError, match=r"argument 3 \(s\) is a scalar"):
        bridge_cffi.to_mxnet_func(scaled_add_te(), const_loc=[0, 1, 3])
    with pytest.raises(bridge_cffi.BridgeValueError, match=r"out of range"):
        bridge_cffi.to_mxnet_func(scaled_add_te(), const_loc=[0, 1, 9])


def test_a_buffer_used_opaquely_is_written_unless_declared_const() -> None:
    assert access_of(script(OPAQUE_SOURCE))["A"] == "opaque"
    assert bridge_cffi.to_mxnet_func(script(OPAQUE_SOURCE)).const_loc == frozenset()
    declared = bridge_cffi.to_mxnet_func(script(OPAQUE_SOURCE), const_loc=[0])
    assert declared.const_loc == frozenset({0})


def test_wrong_argument_count_names_both_accepted_forms() -> None:
    f = bridge_cffi.to_mxnet_func(scaled_add_te(), name="scaled_add")
    with pytest.raises(bridge_cffi.BridgeTypeError,
                       match=r"scaled_add takes 4 arguments, or 3 without its outputs \(z\), "
                             r"got 2"):
        f(mx.nd.ones(2), 1.0)


def test_inputs_disagreeing_on_a_symbolic_size_are_refused_before_the_push() -> None:
    f = bridge_cffi.to_mxnet_func(scaled_add_te())
    with pytest.raises(bridge_cffi.BridgeValueError,
                       match=r"argument 1 \(y\): dimension 0 is n = 4, but argument 0 \(x\) "
                             r"dimension 0 set it to 3"):
        f(mx.nd.ones(3), mx.nd.ones(4), 1.0)


def test_an_input_of_the_wrong_dtype_or_kind_is_refused_before_the_push() -> None:
    f = bridge_cffi.to_mxnet_func(scaled_add_te())
    with pytest.raises(bridge_cffi.BridgeTypeError,
                       match=r"argument 1 \(y\): .*float32, got .*float64"):
        f(mx.nd.ones(3), mx.nd.ones(3, dtype="float64"), 1.0)
    with pytest.raises(bridge_cffi.BridgeTypeError,
                       match=r"argument 0 \(x\): expected an mx.nd.NDArray"):
        f(np.ones(3, dtype="float32"), mx.nd.ones(3), 1.0)


def test_outputs_follow_the_inputs_context_and_chain_into_native_ops() -> None:
    f = bridge_cffi.to_mxnet_func(scaled_add_te())
    x = mx.nd.ones(4, ctx=mx.cpu(0))
    z = f(x, x * 2, 1.0)  # x read twice through two arrays; z pending
    w = f(z, z, 0.5)  # a bridged op reading a pending bridged output
    assert z.context == mx.cpu(0)
    np.testing.assert_allclose((w + 1).asnumpy(), [4.0] * 4)


@settings(max_examples=15, deadline=None, derandomize=True, database=None)
@given(m=st.integers(1, 6), n=st.integers(1, 9), use_np=st.booleans())
def test_output_shapes_and_values_follow_any_input_shape(m: int, n: int, use_np: bool) -> None:
    f = split_function()
    a = np.arange(m * n, dtype="float32").reshape(m, n) - 3.0
    total, doubled, positive = f(mx.np.array(a) if use_np else mx.nd.array(a))
    assert (total.shape, doubled.shape, positive.shape) == ((m,), (m, 2 * n), (m, n))
    assert all(isinstance(o, mx.np.ndarray) == use_np for o in (total, doubled, positive))
    np.testing.assert_allclose(total.asnumpy(), a.sum(axis=1), rtol=1e-6)
    np.testing.assert_array_equal(doubled.asnumpy(), np.concatenate([a, a], axis=1))
