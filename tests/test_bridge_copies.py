"""Copying a wrapper gives the wrapper (immutable, sharing its kernel); pickling says why not."""

from __future__ import annotations

import copy
import pickle

import mxnet as mx
import numpy as np
import pytest

import bridge_cffi
from bridge_cffi.mxnet.interface import MxnetFunc
from conftest import needs_tvm_0_27
from kernels_tvm import add_into_default, default_add_prim_func

_MADE_FROM = [pytest.param("unbuilt", marks=needs_tvm_0_27), "built"]


def _wrapped(made_from: str) -> MxnetFunc:
    """The same add, from un-built TVM code or from a built module."""
    if made_from == "unbuilt":
        return bridge_cffi.to_mxnet_func(default_add_prim_func())
    return bridge_cffi.to_mxnet_func(add_into_default("float32"), const_loc=[0, 1])


@pytest.mark.parametrize("made_from", _MADE_FROM)
def test_copies_share_the_kernel_and_still_run(made_from: str) -> None:
    f = _wrapped(made_from)
    for copied in (copy.copy(f), copy.deepcopy(f), copy.deepcopy({"f": f})["f"]):
        assert copied is f and copied.kernel is f.kernel
    out = mx.nd.zeros(4)
    copy.deepcopy(f)(mx.nd.ones(4), mx.nd.ones(4), out)
    np.testing.assert_array_equal(out.asnumpy(), np.full(4, 2.0))


@pytest.mark.parametrize("made_from", _MADE_FROM)
def test_pickling_is_a_clear_type_error(made_from: str) -> None:
    f = _wrapped(made_from)
    with pytest.raises(TypeError, match=r"cannot pickle the bridged function .*export_library"):
        pickle.dumps(f)
    with pytest.raises(TypeError, match="cannot pickle the kernel"):
        pickle.dumps(f.kernel)
