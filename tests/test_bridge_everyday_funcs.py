"""Everyday things to hand to_mxnet_func: a module built from a TVMScript function of any
name, bfloat16 arrays, and clear refusals for target= on compiled code and for a te.Tensor.
"""

from __future__ import annotations

import mxnet as mx
import numpy as np
import pytest
import tvm
from packaging.version import Version
from tvm import te

import bridge_cffi
from conftest import MXNET_VERSION, needs_tvm_0_27

VADD = """
# from tvm.script import tirx as T
@T.prim_func
def vadd(a: T.handle, b: T.handle):
    A = T.match_buffer(a, (8,), "float32")
    B = T.match_buffer(b, (8,), "float32")
    for i in range(8):
        B[i] = A[i] + 1.0
"""


def test_a_built_module_whose_function_is_not_named_main_runs_under_its_own_name() -> None:
    module = tvm.build(tvm.script.from_source(VADD), target="llvm")
    f = bridge_cffi.to_mxnet_func(module, const_loc=[0])
    assert f.name == "vadd"
    out = mx.nd.zeros(8)
    f(mx.nd.array(np.arange(8, dtype="float32")), out)
    np.testing.assert_array_equal(out.asnumpy(), np.arange(8) + 1)


@needs_tvm_0_27
def test_unbuilt_default_functions_are_named_after_what_they_compute() -> None:
    x = te.placeholder((4,), name="x")
    doubled = te.compute((4,), lambda i: x[i] * 2, name="doubled")
    assert bridge_cffi.to_mxnet_func(te.create_prim_func([x, doubled])).name == "doubled"


@needs_tvm_0_27
@pytest.mark.xfail(
    MXNET_VERSION < Version("1.7"),
    reason=f"MXNet {MXNET_VERSION} has no bfloat16 arrays (they arrived in 1.7)",
    strict=True,
)
def test_bfloat16_arrays_on_the_unbuilt_path() -> None:
    from mxnet.ndarray.ndarray import _DTYPE_MX_TO_NP

    bfloat16 = _DTYPE_MX_TO_NP[12]  # MXNet's own bfloat16 dtype
    x = te.placeholder((8,), name="x", dtype="bfloat16")
    z = te.compute((8,), lambda i: x[i] + tvm.tirx.const(1, "bfloat16"), name="z")
    f = bridge_cffi.to_mxnet_func(te.create_prim_func([x, z]))
    a = mx.nd.array(np.arange(8, dtype="float32")).astype(bfloat16)
    np.testing.assert_array_equal(f(a).astype("float32").asnumpy(), np.arange(8) + 1)
    with pytest.raises(TypeError, match="holds bfloat16, got an array of float32"):
        f(mx.nd.ones(8))
    y = te.placeholder((8,), name="y")
    w = te.compute((8,), lambda i: y[i], name="w")
    with pytest.raises(TypeError, match="holds float32, got an array of bfloat16"):
        bridge_cffi.to_mxnet_func(te.create_prim_func([y, w]))(a)


def test_target_is_refused_for_compiled_code() -> None:
    from kernels_tvm import scaled_add

    with pytest.raises(ValueError, match="target: only un-built TVM code"):
        bridge_cffi.to_mxnet_func(scaled_add(), target="cuda")


def test_a_te_tensor_is_refused_with_the_way_to_make_a_function() -> None:
    x = te.placeholder((4,), name="x")
    y = te.compute((4,), lambda i: x[i], name="y")
    with pytest.raises(TypeError, match=r"te.create_prim_func\(\[x, y, z\]\)"):
        bridge_cffi.to_mxnet_func(y)
