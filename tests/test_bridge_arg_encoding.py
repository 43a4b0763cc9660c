"""The one argument encoding: Python packs exact bridge_arg records (protocol.h's layout), and
the C entry refuses a buffer that is not whole records or a kind the wire does not carry.
"""

from __future__ import annotations

import sys

import mxnet as mx
import pytest

import bridge_cffi
from bridge_cffi.mxnet.packing import pack_arguments
from bridge_cffi.native import ffi, lib
from kernels_tvm import add_scalar


def _records(packed: bytes) -> list[tuple[int, int, object]]:
    """(kind, reserved, payload) of each record, read through cffi's own bridge_arg."""
    args = ffi.from_buffer("bridge_arg[]", packed)
    out: list[tuple[int, int, object]] = []
    for arg in args:
        payload: object = arg.value.v_float64 if arg.kind == lib.BRIDGE_ARG_FLOAT else None
        if arg.kind == lib.BRIDGE_ARG_MXNET_NDARRAY:
            payload = int(ffi.cast("uintptr_t", arg.value.v_ptr))
        elif arg.kind in (lib.BRIDGE_ARG_INT, lib.BRIDGE_ARG_BOOL):
            payload = arg.value.v_int64
        out.append((arg.kind, arg.reserved, payload))
    return out


def test_arguments_are_packed_as_exact_bridge_arg_records() -> None:
    a = mx.nd.ones((3,))
    values = (a, 2.5, 2**63 - 1, -(2**63), True, 2**53 + 1)
    packed = pack_arguments(values)
    assert len(packed) == ffi.sizeof("bridge_arg") * len(values)
    assert _records(packed) == [
        (lib.BRIDGE_ARG_MXNET_NDARRAY, 0, a.handle.value),
        (lib.BRIDGE_ARG_FLOAT, 0, 2.5),
        (lib.BRIDGE_ARG_INT, 0, 2**63 - 1),
        (lib.BRIDGE_ARG_INT, 0, -(2**63)),
        (lib.BRIDGE_ARG_BOOL, 0, 1),
        (lib.BRIDGE_ARG_INT, 0, 2**53 + 1),
    ]
    assert pack_arguments(()) == b""


def test_the_engine_kind_is_the_consumers_own() -> None:
    # Protocol kinds are appended from 1 upwards; the consumer's kind must never meet one.
    protocol_kinds = {
        lib.BRIDGE_ARG_TENSOR,
        lib.BRIDGE_ARG_INT,
        lib.BRIDGE_ARG_FLOAT,
        lib.BRIDGE_ARG_BOOL,
        lib.BRIDGE_ARG_OPAQUE,
    }
    assert lib.BRIDGE_ARG_MXNET_NDARRAY >= lib.BRIDGE_ARG_CONSUMER_FIRST > max(protocol_kinds)


@pytest.fixture
def bridged() -> bridge_cffi.BridgedFunction:
    function = bridge_cffi.to_mxnet_func(add_scalar("float32"), const_loc=[0])
    assert isinstance(function, bridge_cffi.BridgedFunction)  # compiled code: _call reads _plan
    return function


def _pushed() -> int:
    counters = ffi.new("bridge_counters*")
    lib.bridge_read_counters(counters)
    return int(counters.ops_pushed)


def _call(function: bridge_cffi.BridgedFunction, packed: bytes, size: int) -> tuple[int, str]:
    status = lib.bridge_call(function._plan, packed, size)
    return status, ffi.string(lib.bridge_last_error()).decode()


def test_a_buffer_of_partial_records_is_refused_before_reading(
    bridged: bridge_cffi.BridgedFunction,
) -> None:
    packed = pack_arguments((mx.nd.ones((2,)), mx.nd.zeros((2,)), 1))
    before = _pushed()
    status, message = _call(bridged, packed[:-1], len(packed) - 1)
    assert status == lib.BRIDGE_E_VALUE
    assert "whole 16-byte bridge_arg records, got 47 bytes" in message
    assert _pushed() == before


def test_a_dltensor_kind_is_not_carried_by_the_engine_wire(
    bridged: bridge_cffi.BridgedFunction,
) -> None:
    a, out = mx.nd.ones((2,)), mx.nd.zeros((2,))
    packed = bytearray(pack_arguments((a, out, 1)))
    packed[0:4] = int(lib.BRIDGE_ARG_TENSOR).to_bytes(4, sys.byteorder)  # record 0's kind
    before = _pushed()
    status, message = _call(bridged, bytes(packed), len(packed))
    assert status == lib.BRIDGE_E_TYPE
    assert "argument 0 has kind 1, which a packed call does not carry" in message
    assert _pushed() == before
    bridged(a, out, 1)  # the same call, packed by the bridge, runs
    assert out.asnumpy().tolist() == [2.0, 2.0]
