"""``BridgedFunction``: a compiled kernel planned once, each call one asynchronous MXNet engine
operation; and ``synchronize``.
"""

from __future__ import annotations

import logging
import numbers
from abc import ABCMeta
from collections.abc import Iterable

from bridge_cffi.errors import (
    BridgeEngineError,
    BridgeTypeError,
    BridgeValueError,
    check,
    new_error_buffer,
)
from bridge_cffi.mxnet.packing import pack_arguments
from bridge_cffi.mxnet.readiness import ensure_gpu_ready
from bridge_cffi.native import CData, ffi, lib
from bridge_cffi.native_object import NativeObject
from bridge_cffi.producers.kernel import Kernel
from bridge_cffi.producers.signature import FLOAT_SCALARS, INT_SCALARS, MX_DTYPE_FLAGS, Signature
from bridge_cffi.stack import require

logger = logging.getLogger(__name__)


def normalise_const_loc(const_loc: Iterable[int] | None) -> frozenset[int]:
    """``const_loc`` as a set of distinct non-negative positions; raises BridgeTypeError or
    BridgeValueError naming what is wrong with it.
    """
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


def check_const_loc_range(const_loc: frozenset[int], arity: int | None, where: str) -> None:
    """Refuse positions of ``const_loc`` past the ``arity`` arguments ``where`` takes (the one
    range check on the Python side; None: the arity is unknown, the kernel checks).
    """
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


class BridgedFunction(NativeObject, metaclass=ABCMeta):
    """A callable pushing one MXNet engine operation per call; see :func:`to_mxnet_func`.

    An ABC only so that :class:`~bridge_cffi.unbuilt_tvm.front_end.InferredFunction`, which
    composes one, registers as offering the same interface.
    """

    __slots__ = ("__weakref__", "_const_loc", "_kernel", "_name", "_plan")

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

    def __call__(self, *args: object) -> None:
        """Validate ``args`` and push one operation; returns at once, before it runs."""
        packed = _pack(args)
        status = _bridge_call(self._plan, packed, len(packed))
        if status:  # one test on the success path; failures are sorted out below
            if status == _GPU_UNTESTED:  # first call on this GPU: self-test it, call again
                ensure_gpu_ready(lib.bridge_untested_gpu())
                status = _bridge_call(self._plan, packed, len(packed))
            if status == lib.BRIDGE_E_RECORDED:
                message = ffi.string(lib.bridge_last_error()).decode("utf-8", "replace")
                raise _recorded_engine_error(message, call_refused=True)
            check(status, lib.bridge_last_error(), self._name)


# Module globals read once per call: cheaper than attribute lookups on the modules.
_pack = pack_arguments
_bridge_call = lib.bridge_call
_GPU_UNTESTED = lib.BRIDGE_E_GPU_UNTESTED


#: The argument kind a scalar parameter of each TVM dtype takes (others stay unchecked).
_SCALAR_KINDS = {
    **dict.fromkeys(INT_SCALARS, _INT),
    **dict.fromkeys(FLOAT_SCALARS, _FLOAT),
    "bool": _BOOL,
}


def param_specs(signature: Signature) -> CData:
    """The C ``bridge_param_spec`` array for a signature (unknown parts stay unchecked)."""
    specs = ffi.new("bridge_param_spec[]", len(signature.parameters))
    symbols: dict[str, int] = {}
    for spec, param in zip(specs, signature.parameters, strict=True):
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
