"""``to_mxnet_func``: wrap a function so each call is one asynchronous MXNet engine operation.

The front door for both kinds of code: compiled code becomes a :class:`BridgedFunction`,
un-built TVM code an :class:`~bridge_cffi.unbuilt_tvm.front_end.InferredFunction` (built here,
its read/write sets and outputs inferred). It sits above both so neither imports the other.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable

from bridge_cffi.errors import BridgeTypeError, BridgeValueError
from bridge_cffi.foreign_types import KernelSource, Target
from bridge_cffi.mxnet.function import BridgedFunction, check_const_loc_range, normalise_const_loc
from bridge_cffi.mxnet.interface import MxnetFunc
from bridge_cffi.mxnet.readiness import ensure_ready
from bridge_cffi.producers.kernel import make_kernel


def is_unbuilt_tvm(func: object) -> bool:
    """Whether ``func`` is un-built TVM code (a PrimFunc or IRModule), which the bridge builds."""
    kind = type(func)
    return kind.__module__.startswith("tvm.") and kind.__name__ in {"PrimFunc", "IRModule"}


def to_mxnet_func(
    func: KernelSource,
    const_loc: Iterable[int] | None = None,
    *,
    name: str | None = None,
    priority: int = 0,
    target: Target = None,
) -> MxnetFunc:
    """Wrap ``func`` so that calling it pushes one asynchronous operation to MXNet's engine.

    ``func`` is a TVM runtime Module (its entry function), a ``tvm_ffi.Function`` or a protocol
    kernel. Arguments at ``const_loc`` positions are read dependencies; every other NDArray
    argument is a write dependency; int, float and bool pass through. The returned callable
    (a :class:`BridgedFunction`) returns ``None`` at once; errors of the function surface at
    the next wait on its outputs.

    ``func`` may also be an un-built TVM ``PrimFunc`` or ``IRModule``: it is built for
    ``target`` (default ``"llvm"``; refused for anything already compiled) and its buffers tell
    which arguments are read and written, so ``const_loc`` may be omitted and outputs may be
    left out of the call, to be allocated and returned (an ``InferredFunction``). Both kinds
    offer :class:`~bridge_cffi.mxnet.interface.MxnetFunc`; ``isinstance`` tells them apart.
    """
    positions = normalise_const_loc(const_loc)
    if isinstance(priority, bool) or not isinstance(priority, numbers.Integral):
        raise BridgeTypeError(f"priority: expected an int, got {type(priority).__name__}")
    if name is not None and not isinstance(name, str):
        raise BridgeTypeError(f"name: expected a str, got {type(name).__name__}")
    ensure_ready()
    if is_unbuilt_tvm(func):
        # Un-built TVM code carries its buffers' read/write sets and shapes: the wrapper can
        # infer const_loc and allocate outputs (bridge_cffi/unbuilt_tvm/). Imported here:
        # it needs MXNet and numpy at import, and `import bridge_cffi` must not.
        from bridge_cffi.unbuilt_tvm.front_end import wrap_unbuilt

        return wrap_unbuilt(
            func, const_loc, name=name, priority=int(priority), target=target or "llvm"
        )
    if target is not None:
        raise BridgeValueError(
            f"target: only un-built TVM code (a PrimFunc or IRModule) is built by the bridge; "
            f"this func was compiled already, for its own target (got target={target!r})"
        )
    kernel = make_kernel(func, name)
    check_const_loc_range(positions, kernel.arity, kernel.name)
    return BridgedFunction(kernel, positions, name or kernel.name, int(priority))
