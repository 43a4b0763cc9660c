"""Errors knowable at the call arrive at the call: a function compiled by TVM embeds its
signature, which the bridge reads once and checks each call against, in C, before pushing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import mxnet as mx
import numpy as np
import pytest
import tvm
from tvm import te

import bridge_cffi
from bridge_cffi.mxnet.interface import MxnetFunc
from bridge_cffi.producers.signature import of_module, parse


def _kernel() -> tvm.runtime.Module:
    x = te.placeholder((20,), name="x")
    y = te.placeholder((20,), name="y")
    scale = te.var("scale", dtype="float32")
    k = te.var("k", dtype="int32")
    z = te.compute((20,), lambda i: (x[i] + y[i]) * scale + k.astype("float32"), name="z")
    return tvm.build(te.create_prim_func([x, y, z, scale, k]), target="llvm")


@pytest.fixture(scope="module")
def checked() -> MxnetFunc:
    return bridge_cffi.to_mxnet_func(_kernel(), const_loc=[0, 1])


@pytest.mark.parametrize(
    ("make_args", "error", "message"),
    [
        (
            lambda a: (mx.nd.ones(30), a, mx.nd.zeros(20), 1.0, 1),
            ValueError,
            "argument 0 (x) has shape (30,), the kernel expects Tensor([20], float32)",
        ),
        (
            lambda a: (mx.nd.ones(20, dtype="float64"), a, mx.nd.zeros(20), 1.0, 1),
            TypeError,
            "argument 0 (x) holds float64, the kernel expects Tensor([20], float32)",
        ),
        (lambda a: (a, a, mx.nd.zeros(20), 1.0), TypeError, "main takes 5 arguments, got 4"),
        (
            lambda a: (a, a, mx.nd.zeros(20), 1.0, 1.5),
            TypeError,
            "argument 4 (k) is the float 1.5, the kernel expects int32",
        ),
        (
            lambda a: (a, a, mx.nd.zeros(20), a, 1),
            TypeError,
            "argument 3 (scale) is an array, the kernel expects a float32 scalar",
        ),
        (
            lambda a: (a, a, 2.0, 1.0, 1),
            TypeError,
            "argument 2 (z) is a float, the kernel expects an array Tensor([20], float32)",
        ),
    ],
)
def test_wrong_calls_raise_at_the_call_and_push_nothing(
    checked: MxnetFunc,
    make_args: Callable[[Any], tuple[Any, ...]],
    error: type,
    message: str,
) -> None:
    before = bridge_cffi.read_counters()["ops_pushed"]
    with pytest.raises(error) as raised:
        checked(*make_args(mx.nd.ones(20)))
    assert message in str(raised.value)
    assert bridge_cffi.read_counters()["ops_pushed"] == before


def test_what_tvm_itself_accepts_passes(checked: MxnetFunc) -> None:
    out = mx.nd.zeros(20)
    checked(mx.nd.ones(20), mx.nd.ones(20), out, 2, True)  # int for float, bool for int
    np.testing.assert_allclose(out.asnumpy(), np.full(20, 5.0))


def test_symbolic_extents_must_agree_across_arguments() -> None:
    from kernels_tvm import scaled_add

    f = bridge_cffi.to_mxnet_func(scaled_add(), const_loc=[0, 1])
    with pytest.raises(
        ValueError, match=r"argument 1 \(y\) has shape \(25,\).*argument 0 set to 20"
    ):
        f(mx.nd.ones(20), mx.nd.ones(25), mx.nd.zeros(20), 1.0)
    out = mx.nd.zeros(25)
    f(mx.nd.ones(25), mx.nd.ones(25), out, 1.0)  # any n, as long as it is one n
    np.testing.assert_allclose(out.asnumpy(), np.full(25, 2.0))


def test_repr_says_where_arguments_are_checked(tmp_path: Path) -> None:
    built = bridge_cffi.to_mxnet_func(_kernel(), const_loc=[0, 1])
    assert "checked against main(x: Tensor([20], float32)" in repr(built)
    _kernel().export_library(str(tmp_path / "k.so"))
    loaded = bridge_cffi.to_mxnet_func(tvm.runtime.load_module(str(tmp_path / "k.so")), [0, 1])
    assert "arguments checked by the kernel, at run time" in repr(loaded)
    by_path = bridge_cffi.to_mxnet_func(tmp_path / "k.so", const_loc=[0, 1])
    assert "checked against main(x: Tensor([20], float32)" in repr(by_path)  # read from the file


def test_signature_text_is_parsed_into_parameters() -> None:
    signature = of_module(_kernel(), "main")
    assert signature is not None and signature.function == "main"
    assert [(p.name, p.tensor, p.dtype, p.shape) for p in signature.parameters] == [
        ("x", True, "float32", (20,)),
        ("y", True, "float32", (20,)),
        ("z", True, "float32", (20,)),
        ("scale", False, "float32", ()),
        ("k", False, "int32", ()),
    ]
    parsed = parse("f", "a: Tensor([n, n * 2], int8), b: handle")
    assert parsed is not None and parsed.parameters[0].shape == ("n", None)
    assert parse("f", "not a parameter list") is None
