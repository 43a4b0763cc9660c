"""Output arrays for bridged calls, allocated the way ``mx.nd.empty`` does, for less.

``mx.nd.empty`` spends most of its 5-6 us per call in Python (dtype and shape conversions
before one ``MXNDArrayCreateEx``); an output the bridge allocates per call is that same one C
call here, delay-allocated like MXNet's, with the dtype flag worked out once per output.
Shapes of 2^31 elements or more (MXNet's 32-bit limit unless built with int64 sizes) go
through ``mx.nd.empty``, which knows what this MXNet supports.
"""

from __future__ import annotations

import ctypes

import numpy as np
from mxnet.base import _LIB, NDArrayHandle, check_call
from mxnet.ndarray import NDArray
from mxnet.ndarray import empty as _mx_empty
from mxnet.ndarray.ndarray import _DTYPE_NP_TO_MX

from bridge_cffi.foreign_types import Context, DType

_SMALL = 2**31
_CREATE = _LIB.MXNDArrayCreateEx
_DELAY_ALLOC = ctypes.c_int(1)
_UINT_ARRAYS = [ctypes.c_uint * ndim for ndim in range(33)]


def dtype_flag(dtype: DType) -> int:
    """MXNet's dtype flag for a numpy dtype (computed once per output plan)."""
    dtype = np.dtype(dtype)
    # MXNet keys its table by scalar type, except bfloat16: a structured dtype it keys as is.
    return int(_DTYPE_NP_TO_MX.get(dtype.type, _DTYPE_NP_TO_MX.get(dtype, -1)))


def nd_empty(shape: tuple[int, ...], dtype: DType, flag: int, ctx: Context) -> NDArray:
    """An uninitialised ``mx.nd.NDArray`` of ``shape`` on ``ctx``, as ``mx.nd.empty`` makes it."""
    size = 1
    for extent in shape:
        size *= extent
    ndim = len(shape)
    if size >= _SMALL or ndim >= len(_UINT_ARRAYS) or flag < 0:
        return _mx_empty(shape, dtype=dtype, ctx=ctx)
    handle = NDArrayHandle()
    check_call(
        _CREATE(_UINT_ARRAYS[ndim](*shape), ndim, ctx.device_typeid, ctx.device_id,
                _DELAY_ALLOC, flag, ctypes.byref(handle))
    )
    return NDArray(handle)
