"""``to_mxnet_func``: wrap a function so each call is one asynchronous MXNet engine operation."""

from __future__ import annotations

import logging
import numbers
import struct
from collections.abc import Callable, Iterable
from typing import Any

from bridge_cffi._native import ffi, lib
from bridge_cffi.errors import (
    BridgeEngineError,
    BridgeTypeError,
    BridgeValueError,
    check,
    error_class,
    new_error_buffer,
)
from bridge_cffi.kernels import Kernel, make_kernel
from bridge_cffi.native_object import NativeObject
from bridge_cffi.readiness import ensure_gpu_ready, ensure_ready
from bridge_cffi.stack import require
from bridge_cffi.tvm_signature import FLOAT_SCALARS, INT_SCALARS, MX_DTYPE_FLAGS, Signature

try:  # the call path's isinstance check needs the class itself; MXNet may be absent
    from mxnet.ndarray import NDArray
except Exception:  # noqa: BLE001 - first use raises BridgeLibraryError (readiness)

    class NDArray:  # type: ignore[no-redef]
        """Matches nothing while MXNet cannot be imported."""

try:
    import numpy as np
except ImportError:  # only with MXNet absent too, which refuses every call first
    np = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_ACCEPTED = "mx.nd.NDArray, mx.np.ndarray, int, float or bool"


def _normalise_const_loc(const_loc: Iterable[int] | None) -> frozenset[int]:
    if const_loc is None:
        return frozenset()
    if isinstance(const_loc, (str, bytes)) or not isinstance(const_loc, Iterable):
        raise BridgeTypeError(
            f"const_loc: expected a list of argument positions, got {type(const_loc).__name__}"
        )
    positions = list(const_loc)
    for position in positions:
        if isinstance(position, bool) or not isinstance(position, numbers.Integral):
            raise BridgeTypeError(
                f"const_loc: expected integer positions, got {position!r} "
                f"({type(position).__name__})"
            )
        if position < 0:
            raise BridgeValueError(f"const_loc: positions start at 0, got {position}")
    if len(set(positions)) != len(positions):
        duplicates = sorted({p for p in positions if positions.count(p) > 1})
        raise BridgeValueError(f"const_loc: position(s) {duplicates} listed more than once")
    return frozenset(int(p) for p in positions)


def _check_arity(const_loc: frozenset[int], arity: int | None, where: str) -> None:
    if arity is None:
        return
    out_of_range = sorted(p for p in const_loc if p >= arity)
    if out_of_range:
        raise BridgeValueError(
            f"const_loc: position(s) {out_of_range} out of range for {where} taking "
            f"{arity} arguments"
        )


_TENSOR = lib.BRIDGE_ARG_TENSOR
_INT = lib.BRIDGE_ARG_INT
_FLOAT = lib.BRIDGE_ARG_FLOAT
_BOOL = lib.BRIDGE_ARG_BOOL
#: The engine consumer's own kind for an MXNet array (an NDArrayHandle); the consumer turns it
#: into the protocol's BRIDGE_ARG_TENSOR, a DLTensor*, when the operation runs.
_NDARRAY = lib.BRIDGE_ARG_MXNET_NDARRAY


class BridgedFunction(NativeObject):
    """A callable pushing one MXNet engine operation per call; see :func:`to_mxnet_func`."""

    __slots__ = ("_kernel", "_plan", "_const_loc", "_name", "__weakref__")

    def __init__(self, kernel: Kernel, const_loc: frozenset[int], name: str, priority: int) -> None:
        self._kernel = kernel
        self._const_loc = const_loc
        self._name = name
        # Planned once in C: kernel, read-only positions, priority and name. A call then
        # passes only its packed arguments.
        size = max(const_loc) + 1 if const_loc else 0
        flags = bytes(1 if i in const_loc else 0 for i in range(size))
        out = ffi.new("bridge_call_plan**")
        error = new_error_buffer()
        check(
            lib.bridge_call_plan_new(
                kernel.pointer, flags, size, priority, name.encode(), out, error
            ),
            error,
            name,
        )
        self._plan = ffi.gc(out[0], lib.bridge_call_plan_free)
        if kernel.signature is not None:
            specs = param_specs(kernel.signature)
            check(
                lib.bridge_call_plan_set_signature(
                    self._plan, specs, len(specs), kernel.signature.function.encode(), error
                ),
                error,
                name,
            )
        if not kernel.accepts_byte_offset:
            logger.debug(
                "%s: the kernel needs byte_offset 0; views whose data is not %d-byte aligned "
                "are staged through an aligned copy on the engine thread",
                name,
                lib.bridge_data_alignment(),
            )

    @property
    def name(self) -> str:
        """The operation's name in MXNet's profiler."""
        return self._name

    @property
    def const_loc(self) -> frozenset[int]:
        """Positions of arguments that are only read."""
        return self._const_loc

    @property
    def arity(self) -> int | None:
        """Number of arguments the function takes, or None when unknown in advance."""
        return self._kernel.arity

    @property
    def kernel(self) -> Kernel:
        """The protocol kernel each call runs."""
        return self._kernel

    def __repr__(self) -> str:
        signature = self._kernel.signature
        checked = (
            f"checked against {signature.text}"
            if signature is not None
            else "arguments checked by the kernel, at run time"
        )
        return f"<BridgedFunction {self._name} const_loc={sorted(self._const_loc)}, {checked}>"

    def _pickle_advice(self) -> str:
        return (
            f"the bridged function {self._name!r}: it holds a compiled kernel and a native "
            "engine plan of this process; save the TVM module instead "
            "(module.export_library(path)) and wrap it again with to_mxnet_func(path)"
        )

    def __call__(self, *args: Any) -> None:
        """Validate ``args`` and push one operation; returns at once, before it runs."""
        # pack_arguments, inlined: a Python function call per call costs measurably at n=20.
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
            pack, size = _LAYOUTS[shape]
        except KeyError:
            pack, size = _layout(shape)
        packed = pack(*values)
        status = _bridge_call(self._plan, packed, size)
        if status:  # one test on the success path; failures are sorted out below
            if status == _GPU_UNTESTED:  # first call on this GPU: self-test it, call again
                ensure_gpu_ready(lib.bridge_untested_gpu())
                status = _bridge_call(self._plan, packed, size)
            if status:
                message = ffi.string(lib.bridge_last_error()).decode("utf-8", "replace")
                if status == lib.BRIDGE_E_RECORDED:
                    raise _recorded_engine_error(message, call_refused=True)
                raise error_class(status)(f"{self._name}: {message}", status)


_bridge_call = lib.bridge_call
_GPU_UNTESTED = lib.BRIDGE_E_GPU_UNTESTED

# The wire format of bridge_call (csrc/runtime/bridge_runtime.h): one bridge_arg record per
# argument, in native byte order without padding ("="): int32 kind, 4 zero bytes (`reserved`,
# "4x"), then the 8-byte payload, exact for every kind (nothing goes through a double unless it
# is one).
#
# One Struct per layout signature. The signature is kept as an int, two bits per position
# (bits 2i and 2i+1, i.e. shifted by len(values) while packing): 0 an NDArrayHandle (uint64),
# 1 a double, 2 an int64 (int or bool), and 3 after the last position, which makes signatures
# of different lengths differ. An int rather than a tuple of kinds because the common argument,
# an array, then costs nothing to record: a tuple built per call measurably slowed n=20 calls.
_CODE_HANDLE, _CODE_DOUBLE, _CODE_INT64, _CODE_END = 0, 1, 2, 3
_PAYLOAD_FORMAT = {_CODE_HANDLE: "Q", _CODE_DOUBLE: "d", _CODE_INT64: "q"}
# Bounded: a caller varying kinds per position could otherwise grow it without limit.
# Each entry is the Struct's bound pack and its size: looking both up per call on the Struct
# costs more than unpacking a pair.
_LAYOUTS: dict[int, tuple[Callable[..., bytes], int]] = {}
_MAX_LAYOUTS = 1024


def _layout(shape: int) -> tuple[Callable[..., bytes], int]:
    """The pack function and size for layout signature ``shape`` (cached while there is room)."""
    formats: list[str] = []
    rest = shape
    while rest & 3 != _CODE_END:
        formats.append("i4x" + _PAYLOAD_FORMAT[rest & 3])
        rest >>= 2
    layout = struct.Struct("=" + "".join(formats))
    entry = (layout.pack, layout.size)
    if len(_LAYOUTS) < _MAX_LAYOUTS:
        _LAYOUTS[shape] = entry
    return entry


def pack_arguments(args: Iterable[Any]) -> bytes:
    """The bytes ``bridge_call`` takes for ``args``: exact ``bridge_arg`` records.

    The one definition of the wire format on the Python side (``BridgedFunction.__call__``
    inlines this loop); benchmarks use it to time the C entry alone. Raises BridgeTypeError or
    BridgeValueError for an argument no record can carry.
    """
    values: list[Any] = []
    shape = 0
    for value in args:
        if isinstance(value, NDArray):
            values += (_NDARRAY, value.handle.value)
        elif value.__class__ is float:
            shape |= _CODE_DOUBLE << len(values)
            values += (_FLOAT, value)
        else:
            record = _scalar(len(values) >> 1, value)
            shape |= (_CODE_DOUBLE if record[0] == _FLOAT else _CODE_INT64) << len(values)
            values += record
    shape |= _CODE_END << len(values)
    pack, _ = _LAYOUTS.get(shape) or _layout(shape)
    return pack(*values)


#: The argument kind a scalar parameter of each TVM dtype takes (others stay unchecked).
_SCALAR_KINDS = {
    **dict.fromkeys(INT_SCALARS, _INT),
    **dict.fromkeys(FLOAT_SCALARS, _FLOAT),
    "bool": _BOOL,
}


def param_specs(signature: Signature) -> Any:
    """The C ``bridge_param_spec`` array for a signature (unknown parts stay unchecked)."""
    specs = ffi.new("bridge_param_spec[]", len(signature.parameters))
    symbols: dict[str, int] = {}
    for spec, param in zip(specs, signature.parameters):
        spec.name = param.name.encode()[:31]
        shown = (
            f"Tensor([{', '.join('?' if d is None else str(d) for d in param.shape)}], "
            f"{param.dtype})"
            if param.tensor
            else param.dtype
        )
        spec.type = shown.encode()[:63]
        spec.mx_dtype = -1
        spec.ndim = -1
        if not param.tensor:
            spec.kind = _SCALAR_KINDS.get(param.dtype, lib.BRIDGE_SPEC_UNCHECKED)
            continue
        spec.kind = _TENSOR
        spec.mx_dtype = MX_DTYPE_FLAGS.get(param.dtype, -1)
        if None in param.shape or len(param.shape) > lib.BRIDGE_SPEC_MAX_DIMS:
            continue  # an extent written as an expression: leave the shape to the kernel
        spec.ndim = len(param.shape)
        for d, extent in enumerate(param.shape):
            if isinstance(extent, int):
                spec.dims[d] = extent
            else:
                spec.dims[d] = -1 - symbols.setdefault(str(extent), len(symbols))
    return specs


def _scalar(position: int, value: Any) -> tuple[int, Any]:
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


def _wrong_type_message(position: int, value: Any) -> str:
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


def _recorded_engine_error(message: str, *, call_refused: bool) -> BridgeEngineError:
    """The exception for an engine error recorded earlier (recorded-error mode)."""
    refused = " (this call was not pushed)" if call_refused else ""
    return BridgeEngineError(
        f"an earlier bridged operation failed on the engine: {message}{refused}",
        lib.BRIDGE_E_RECORDED,
    )


def synchronize() -> None:
    """Wait for all pending MXNet work, then raise any recorded bridged-operation error."""
    mx = require("mxnet", "bridge_cffi.synchronize")

    mx.nd.waitall()
    error = new_error_buffer()
    if lib.bridge_take_recorded_error(error):
        raise _recorded_engine_error(
            ffi.string(error).decode("utf-8", "replace"), call_refused=False
        )


def _is_unbuilt_tvm(func: Any) -> bool:
    kind = type(func)
    return kind.__module__.startswith("tvm.") and kind.__name__ in {"PrimFunc", "IRModule"}


def to_mxnet_func(
    func: Any,
    const_loc: Iterable[int] | None = None,
    *,
    name: str | None = None,
    priority: int = 0,
    target: Any = None,
) -> BridgedFunction:
    """Wrap ``func`` so that calling it pushes one asynchronous operation to MXNet's engine.

    ``func`` is a TVM runtime Module (its entry function), a ``tvm_ffi.Function`` or a protocol
    kernel. Arguments at ``const_loc`` positions are read dependencies; every other NDArray
    argument is a write dependency; int, float and bool pass through. The returned callable
    returns ``None`` at once; errors of the function surface at the next wait on its outputs.

    ``func`` may also be an un-built TVM ``PrimFunc`` or ``IRModule``: it is built for
    ``target`` (default ``"llvm"``; refused for anything already compiled) and its buffers tell
    which arguments are read and written, so ``const_loc`` may be omitted and outputs may be
    left out of the call, to be allocated and returned.
    """
    positions = _normalise_const_loc(const_loc)
    if isinstance(priority, bool) or not isinstance(priority, numbers.Integral):
        raise BridgeTypeError(f"priority: expected an int, got {type(priority).__name__}")
    if name is not None and not isinstance(name, str):
        raise BridgeTypeError(f"name: expected a str, got {type(name).__name__}")
    ensure_ready()
    if _is_unbuilt_tvm(func):
        # Un-built TVM code carries its buffers' read/write sets and shapes: the wrapper can
        # infer const_loc and allocate outputs (bridge_cffi/tvm_inference.py).
        from bridge_cffi.tvm_inference import wrap_unbuilt

        return wrap_unbuilt(
            func, const_loc, name=name, priority=int(priority), target=target or "llvm"
        )
    if target is not None:
        raise BridgeValueError(
            f"target: only un-built TVM code (a PrimFunc or IRModule) is built by the bridge; "
            f"this func was compiled already, for its own target (got target={target!r})"
        )
    kernel = make_kernel(func, name)
    _check_arity(positions, kernel.arity, kernel.name)
    return BridgedFunction(kernel, positions, name or kernel.name, int(priority))
