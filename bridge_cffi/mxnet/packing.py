"""The Python side of the wire format: arguments packed into exact ``bridge_arg`` records.

``bridge_call`` (csrc/runtime/bridge_runtime.h) takes one record per argument, in native byte order
without padding ("="): int32 kind, 4 zero bytes (``reserved``, "4x"), then the 8-byte payload,
exact for every kind (nothing goes through a double unless it is one). An MXNet array travels
as the engine consumer's own kind, an NDArrayHandle, which the consumer turns into the
protocol's tensor kind (a DLTensor*) when the operation runs.
"""

from __future__ import annotations

import numbers
import struct
from collections.abc import Callable, Iterable
from typing import Any

from bridge_cffi.errors import BridgeTypeError, BridgeValueError
from bridge_cffi.native import lib

try:  # the isinstance check needs the class itself; MXNet may be absent
    from mxnet.ndarray import NDArray
except Exception:  # noqa: BLE001 - first use raises BridgeLibraryError (readiness)

    class NDArray:  # type: ignore[no-redef]
        """Matches nothing while MXNet cannot be imported."""

try:
    import numpy as np
except ImportError:  # only with MXNet absent too, which refuses every call first
    np = None  # type: ignore[assignment]

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_ACCEPTED = "mx.nd.NDArray, mx.np.ndarray, int, float or bool"

_INT = lib.BRIDGE_ARG_INT
_FLOAT = lib.BRIDGE_ARG_FLOAT
_BOOL = lib.BRIDGE_ARG_BOOL
#: The engine consumer's own kind for an MXNet array (an NDArrayHandle); the consumer turns it
#: into the protocol's BRIDGE_ARG_TENSOR, a DLTensor*, when the operation runs.
_NDARRAY = lib.BRIDGE_ARG_MXNET_NDARRAY

# One Struct per layout signature. The signature is kept as an int, two bits per position
# (bits 2i and 2i+1, i.e. shifted by len(values) while packing): 0 an NDArrayHandle (uint64),
# 1 a double, 2 an int64 (int or bool), and 3 after the last position, which makes signatures
# of different lengths differ. An int rather than a tuple of kinds because the common argument,
# an array, then costs nothing to record: a tuple built per call measurably slowed n=20 calls.
_CODE_HANDLE, _CODE_DOUBLE, _CODE_INT64, _CODE_END = 0, 1, 2, 3
_PAYLOAD_FORMAT = {_CODE_HANDLE: "Q", _CODE_DOUBLE: "d", _CODE_INT64: "q"}
# Bounded: a caller varying kinds per position could otherwise grow it without limit.
_LAYOUTS: dict[int, Callable[..., bytes]] = {}
_MAX_LAYOUTS = 1024


def _layout(shape: int) -> Callable[..., bytes]:
    """The pack function for layout signature ``shape`` (cached while there is room)."""
    formats: list[str] = []
    rest = shape
    while rest & 3 != _CODE_END:
        formats.append("i4x" + _PAYLOAD_FORMAT[rest & 3])
        rest >>= 2
    pack = struct.Struct("=" + "".join(formats)).pack
    if len(_LAYOUTS) < _MAX_LAYOUTS:
        _LAYOUTS[shape] = pack
    return pack


def pack_arguments(args: Iterable[Any]) -> bytes:
    """The bytes ``bridge_call`` takes for ``args``: exact ``bridge_arg`` records.

    The one definition of the wire format on the Python side, called once per bridged call
    (kept to cheap work: an array costs one isinstance and two list items). Raises
    BridgeTypeError or BridgeValueError for an argument no record can carry.
    """
    values: list[Any] = []
    shape = 0  # the layout key, see _layout
    for value in args:
        if isinstance(value, NDArray):
            values += (_NDARRAY, value.handle.value)  # code 0: adds nothing
        elif value.__class__ is float:
            shape |= _CODE_DOUBLE << len(values)
            values += (_FLOAT, value)
        else:
            record = _scalar(len(values) >> 1, value)
            shape |= (_CODE_DOUBLE if record[0] == _FLOAT else _CODE_INT64) << len(values)
            values += record
    shape |= _CODE_END << len(values)
    try:
        pack = _LAYOUTS[shape]
    except KeyError:
        pack = _layout(shape)
    return pack(*values)


def _scalar(position: int, value: object) -> tuple[int, int | float]:
    """The (kind, payload) of a non-array argument."""
    if isinstance(value, bool) or (np is not None and isinstance(value, np.bool_)):
        return (_BOOL, 1 if value else 0)
    if isinstance(value, numbers.Integral):
        number = int(value)
        if not _INT64_MIN <= number <= _INT64_MAX:
            raise BridgeValueError(f"argument {position}: the int {value} does not fit in int64")
        return (_INT, number)
    if isinstance(value, numbers.Real):
        return (_FLOAT, float(value))
    raise BridgeTypeError(_wrong_type_message(position, value))


def _wrong_type_message(position: int, value: object) -> str:
    kind = type(value)
    hint = ""
    if np is not None and isinstance(value, np.ndarray):
        hint = "; convert numpy arrays with mx.nd.array(x) (or mx.np.array(x)) first"
    elif isinstance(value, (list, tuple)):
        hint = "; pass arrays as mx.nd.array(...), not Python sequences"
    elif value is None:
        hint = "; None is not a value the function can receive"
    elif kind.__module__.startswith("mxnet.symbol"):
        hint = (
            "; a bridged function runs on arrays: to use it in Symbol graphs and hybridized "
            "blocks, make it an operator with bridge_cffi.register_op"
        )
    shown = f"{kind.__module__}.{kind.__qualname__}"
    return f"argument {position}: expected {_ACCEPTED}, got {shown}{hint}"
