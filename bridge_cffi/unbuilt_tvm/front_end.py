"""Un-built TVM code: infer read/write sets and outputs from the PrimFunc, build it, wrap it.

``to_mxnet_func`` hands an un-built ``tvm.tirx.PrimFunc`` or ``IRModule`` to
:func:`wrap_unbuilt`: :mod:`.access` classifies the parameters, ``tvm.build`` compiles the
function, and the :class:`InferredFunction` returned holds the :class:`BridgedFunction` that
pushes each call, with :mod:`.shapes` and :mod:`.outputs` allocating what the caller leaves out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from bridge_cffi.errors import BridgeTypeError
from bridge_cffi.foreign_types import Context, Outputs, PrimFunc, Target
from bridge_cffi.mxnet.function import BridgedFunction, normalise_const_loc
from bridge_cffi.native_object import NativeObject
from bridge_cffi.producers.kernel import Kernel, from_tvmffi_function
from bridge_cffi.unbuilt_tvm.access import (
    CONST_ACCESS,
    OPAQUE,
    READ,
    READWRITE,
    SCALAR,
    UNUSED,
    WRITE,
    Parameter,
    analyse,
    buffers_accept_any_offset,
    check_const_loc_agrees,
    select_prim_func,
)
from bridge_cffi.unbuilt_tvm.outputs import allocate_outputs, dtype_name, mxnet_dtype, plan_call
from bridge_cffi.unbuilt_tvm.shapes import output_shapes

__all__ = [
    "OPAQUE",
    "READ",
    "READWRITE",
    "SCALAR",
    "UNUSED",
    "WRITE",
    "InferredFunction",
    "Parameter",
    "analyse",
    "dtype_name",
    "mxnet_dtype",
    "wrap_unbuilt",
]


class InferredFunction(NativeObject):
    """A bridged function built from un-built TVM code, which knows its outputs.

    Call it with every argument (like any bridged function; returns ``None``), or without the
    output arguments: it then allocates them with MXNet (``mx.np`` if any array argument is an
    ``mx.np.ndarray``, ``mx.nd`` otherwise; on the first array argument's context), pushes the
    operation, and returns the outputs at once (one array, or a tuple in parameter order).

    It holds the :class:`BridgedFunction` that pushes each call (``bridged``) and offers its
    interface (``name``, ``const_loc``, ``arity``, ``kernel``), so it is registered as one.
    """

    __slots__ = (
        "__weakref__",
        "_bridged",
        "_default_ctx",
        "_input_plans",
        "_n_full",
        "_n_short",
        "_output_plans",
        "_parameters",
    )

    def __init__(
        self, bridged: BridgedFunction, parameters: tuple[Parameter, ...], default_ctx: Context
    ) -> None:
        self._bridged = bridged
        self._parameters = parameters
        self._input_plans, self._output_plans = plan_call(parameters)
        self._n_full = len(parameters)
        self._n_short = len(parameters) - len(self._output_plans)
        self._default_ctx = default_ctx

    @property
    def bridged(self) -> BridgedFunction:
        """The bridged function each call goes through, with every argument."""
        return self._bridged

    @property
    def name(self) -> str:
        """The operation's name in MXNet's profiler."""
        return self._bridged.name

    @property
    def const_loc(self) -> frozenset[int]:
        """Positions of arguments that are only read."""
        return self._bridged.const_loc

    @property
    def arity(self) -> int | None:
        """Number of arguments of a call with every argument."""
        return self._bridged.arity

    @property
    def kernel(self) -> Kernel:
        """The protocol kernel each call runs."""
        return self._bridged.kernel

    def _pickle_advice(self) -> str:
        return self._bridged._pickle_advice()

    @property
    def parameters(self) -> tuple[Parameter, ...]:
        """Every parameter with its inferred access kind."""
        return self._parameters

    @property
    def outputs(self) -> tuple[int, ...]:
        """Positions of the parameters the wrapper allocates when the caller leaves them out."""
        return tuple(plan.param.position for plan in self._output_plans)

    def __repr__(self) -> str:
        return (
            f"<InferredFunction {self.name} const_loc={sorted(self.const_loc)} "
            f"outputs={list(self.outputs)}>"
        )

    def __call__(self, *args: object) -> Outputs:
        """Push one operation; return the allocated outputs when they were left out."""
        count = len(args)
        if count == self._n_full:
            return self._bridged(*args)
        if count != self._n_short:
            names = ", ".join(p.param.name for p in self._output_plans)
            raise BridgeTypeError(
                f"{self.name} takes {self._n_full} arguments, or {self._n_short} without its "
                f"outputs ({names}), got {count}"
            )
        outputs = allocate_outputs(self._input_plans, self._output_plans, args, self._default_ctx)
        full: list[Any] = list(args)
        for plan, array in zip(self._output_plans, outputs, strict=True):
            full.insert(plan.param.position, array)
        self._bridged(*full)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    @property
    def input_dtypes(self) -> tuple[Any, ...]:
        """Per argument of a call without outputs: the buffer's numpy dtype, None for a scalar."""
        return tuple(plan.np_dtype for plan in self._input_plans)

    @property
    def output_dtypes(self) -> tuple[Any, ...]:
        """The numpy dtype of each output, in parameter order."""
        return tuple(out.np_dtype for out in self._output_plans)

    def output_shapes(self, inputs: Sequence[Any]) -> list[tuple[int, ...]]:
        """The output shapes of a call without outputs whose arguments are ``inputs``: a shape
        tuple for each buffer argument, the value for each scalar one. Raises naming the
        argument when a shape disagrees with the PrimFunc's.
        """
        return output_shapes(self._input_plans, self._output_plans, inputs)


# Not a subclass (it composes one), but usable wherever a BridgedFunction is: same interface.
BridgedFunction.register(InferredFunction)


def operation_name(symbol: str, parameters: tuple[Parameter, ...]) -> str:
    """The name shown in MXNet's profiler: the PrimFunc's own, or, for ``te.create_prim_func``'s
    default ``main``, the names of what it computes (its output buffers, e.g. ``z``).
    """
    if symbol != "main":
        return symbol
    outputs = [p.name for p in parameters if p.is_output]
    return "_".join(outputs) if outputs else symbol


def _default_context(target: Target) -> Context:
    """Where outputs go when no array argument says: the GPU for GPU targets, else the CPU."""
    import mxnet as mx
    import tvm

    kind = tvm.target.Target(target).kind.name
    return mx.gpu(0) if kind in ("cuda", "nvptx") else mx.cpu()


def wrap_unbuilt(
    func: PrimFunc,
    const_loc: Iterable[int] | None,
    *,
    name: str | None = None,
    priority: int = 0,
    target: Target = "llvm",
) -> InferredFunction:
    """Analyse, build (``tvm.build(func, target=target)``) and wrap an un-built PrimFunc/IRModule.

    ``const_loc=None`` uses the inferred read set; an explicit ``const_loc`` must agree with it
    (a buffer the body stores to cannot be const, a buffer it only loads must be const), and
    may mark an *opaque* buffer read-only.
    """
    import tvm

    parameters = analyse(func)
    prim_func, to_build, symbol = select_prim_func(func)
    if const_loc is None:
        positions = frozenset(p.position for p in parameters if p.access in CONST_ACCESS)
    else:
        positions = normalise_const_loc(const_loc)
        check_const_loc_agrees(positions, parameters)
    module = tvm.build(to_build, target=target)
    if not module.implements_function(symbol, True):
        raise BridgeTypeError(f"func: the built module has no function {symbol!r}")
    shown = name or operation_name(symbol, parameters)
    kernel = from_tvmffi_function(
        module[symbol],
        shown,
        keepalive=(module,),
        accepts_byte_offset=buffers_accept_any_offset(prim_func),
    )
    kernel = Kernel(kernel.pointer, kernel.name, len(parameters), kernel.keepalive)
    return InferredFunction(
        BridgedFunction(kernel, positions, shown, priority), parameters, _default_context(target)
    )
