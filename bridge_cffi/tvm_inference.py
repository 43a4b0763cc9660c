"""Un-built TVM code: infer read/write sets and outputs from the PrimFunc, build it, wrap it.

``to_mxnet_func`` hands an un-built ``tvm.tirx.PrimFunc`` or ``IRModule`` to
:func:`wrap_unbuilt`. The PrimFunc's body says, for every buffer parameter, whether it is
loaded, stored, or both (TVM 0.27: ``BufferStore.buffer`` and ``TensorLoad.source`` are the
parameter's buffer-typed ``Var``; ``SBlock`` ``reads``/``writes`` annotations count too):

- only loaded (or never touched): a read dependency, i.e. in ``const_loc``;
- only stored: an *output*, which the wrapper can allocate with MXNet and return;
- loaded and stored: *in place*, written, and always passed by the caller;
- used any other way (e.g. its data pointer handed to an extern call): *opaque*, treated as
  written unless an explicit ``const_loc`` says it is only read.

A load inside an ``SBlock`` that has an ``init`` and writes the same buffer is the reduction's
own accumulator (``C[i] = C[i] + ...`` after ``T.init()``), not a read of the caller's data.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from mxnet.ndarray import NDArray

try:  # mx.np arrived in MXNet 1.6; older MXNet only has mx.nd arrays.
    from mxnet.numpy import empty as _numpy_empty
    from mxnet.numpy import ndarray as _NumpyArray
except ImportError:  # pragma: no cover - exercised by the MXNet 1.5.1 matrix cell
    _numpy_empty = None

    class _NumpyArray:  # type: ignore[no-redef]
        """Stands in for mx.np.ndarray where MXNet has none: nothing is an instance of it."""


from bridge_cffi.bridged_function import BridgedFunction, _normalise_const_loc
from bridge_cffi.errors import BridgeTypeError, BridgeValueError
from bridge_cffi.kernels import Kernel, from_tvmffi_function
from bridge_cffi.mxnet_alloc import dtype_flag, nd_empty

# Access kinds of a parameter, as reported by :func:`analyse`.
READ = "read"  # only loaded: const
WRITE = "write"  # only stored: an output the wrapper allocates when the caller leaves it out
READWRITE = "readwrite"  # loaded and stored: in place, the caller passes it
OPAQUE = "opaque"  # used other than by loads and stores: written unless declared const
UNUSED = "unused"  # a buffer the body never touches: const
SCALAR = "scalar"  # not a buffer: passed through positionally

_CONST_ACCESS = frozenset({READ, UNUSED})


@dataclass(frozen=True)
class Parameter:
    """One parameter of the PrimFunc, as the bridge sees it."""

    position: int
    name: str
    access: str  # one of READ, WRITE, READWRITE, OPAQUE, UNUSED, SCALAR
    dtype: str
    shape: tuple[Any, ...]  # TVM PrimExprs; () for scalars
    has_strides: bool
    loads: int
    stores: int
    why: str  # how the access kind was decided, for error messages
    var: Any  # the tvm Var of the parameter

    @property
    def is_buffer(self) -> bool:
        """True for a buffer (array) parameter, False for a scalar one."""
        return self.access != SCALAR

    @property
    def is_output(self) -> bool:
        """True when the function only writes this buffer, so the wrapper can allocate it."""
        return self.access == WRITE


def _handle(obj: Any) -> int:
    return int(obj.__chandle__())


def _global_symbol(prim_func: Any, default: str) -> str:
    attrs = prim_func.attrs
    return str(attrs["global_symbol"]) if attrs and "global_symbol" in attrs else default


def _select_prim_func(func: Any) -> tuple[Any, Any, str]:
    """Return (PrimFunc, what to build, its symbol in the built module)."""
    import tvm
    from tvm import tirx

    if isinstance(func, tirx.PrimFunc):
        return func, func, _global_symbol(func, "main")
    if isinstance(func, tvm.IRModule):
        prim_funcs = [
            (gvar.name_hint, f)
            for gvar, f in func.functions.items()
            if isinstance(f, tirx.PrimFunc)
        ]
        if not prim_funcs:
            raise BridgeTypeError("func: the IRModule holds no PrimFunc to build")
        chosen = [pf for pf in prim_funcs if pf[0] == "main"] if len(prim_funcs) > 1 else prim_funcs
        if not chosen:
            names = sorted(name for name, _ in prim_funcs)
            raise BridgeValueError(
                f"func: the IRModule holds several PrimFuncs {names} and none is named 'main'; "
                f"pass the one to run, e.g. to_mxnet_func(mod[{names[0]!r}])"
            )
        name, prim_func = chosen[0]
        return prim_func, func, _global_symbol(prim_func, name)
    raise BridgeTypeError(f"func: expected a tvm PrimFunc or IRModule, got {type(func).__name__}")


def analyse(func: Any) -> tuple[Parameter, ...]:
    """Classify each parameter of an un-built PrimFunc (or an IRModule's PrimFunc)."""
    import tvm_ffi
    from tvm import ir, tirx
    from tvm.s_tir.stmt import SBlock

    prim_func, _, _ = _select_prim_func(func)
    params = list(prim_func.params)
    buffers = {_handle(p): p for p in params if isinstance(p.ty, tirx.BufferType)}
    loads: dict[int, int] = dict.fromkeys(buffers, 0)
    stores = dict(loads)
    region_reads = dict(loads)
    region_writes = dict(loads)
    accumulator_loads = dict(loads)
    occurrences = dict(loads)

    def on_store(node: Any) -> None:
        key = _handle(node.buffer)
        if key in stores:
            stores[key] += 1

    def on_load(node: Any) -> None:
        key = _handle(node.source)
        if key in loads:
            loads[key] += 1

    def on_var(node: Any) -> None:
        key = _handle(node)
        if key in occurrences:
            occurrences[key] += 1

    def on_block(block: Any) -> None:
        written_here = set()
        for region in block.reads:
            key = _handle(region.source)
            if key in region_reads:
                region_reads[key] += 1
        for region in block.writes:
            key = _handle(region.source)
            if key in region_writes:
                region_writes[key] += 1
                written_here.add(key)
        if block.init is not None and written_here:

            def on_accumulator(node: Any) -> None:
                key = _handle(node.source)
                if key in written_here:
                    accumulator_loads[key] += 1

            tvm_ffi.structural_walk(block.body, [(ir.TensorLoad, on_accumulator)])

    tvm_ffi.structural_walk(
        prim_func.body,
        [
            (tirx.BufferStore, on_store),
            (ir.TensorLoad, on_load),
            (SBlock, on_block),
        ],
    )
    tvm_ffi.structural_walk(prim_func.body, [(ir.Var, on_var)])

    result = []
    for position, param in enumerate(params):
        key = _handle(param)
        name = str(param.name) if hasattr(param, "name") else str(param)
        if key not in buffers:
            result.append(
                Parameter(
                    position,
                    name,
                    SCALAR,
                    str(param.ty.dtype),
                    (),
                    False,
                    0,
                    0,
                    "a scalar parameter",
                    param,
                )
            )
            continue
        real_loads = loads[key] - accumulator_loads[key]
        read = real_loads > 0 or region_reads[key] > 0
        written = stores[key] > 0 or region_writes[key] > 0
        accounted = loads[key] + stores[key] + region_reads[key] + region_writes[key]
        if occurrences[key] > accounted:
            access = OPAQUE
            why = (
                f"used {occurrences[key] - accounted} time(s) other than by a load or store "
                f"(e.g. its data pointer passed to a call), so the bridge cannot tell"
            )
        elif read and written:
            access, why = READWRITE, f"loaded at {real_loads} and stored at {stores[key]} site(s)"
        elif written:
            access, why = WRITE, f"stored at {stores[key]} site(s) and never loaded"
        elif read:
            access, why = READ, f"loaded at {real_loads} site(s) and never stored"
        else:
            access, why = UNUSED, "never accessed"
        result.append(
            Parameter(
                position,
                name,
                access,
                str(param.dtype),
                tuple(param.shape),
                len(param.strides) > 0,
                real_loads,
                stores[key],
                why,
                param,
            )
        )
    return tuple(result)


def _check_explicit_const_loc(const_loc: frozenset[int], params: Sequence[Parameter]) -> None:
    arity = len(params)
    out_of_range = sorted(p for p in const_loc if p >= arity)
    if out_of_range:
        raise BridgeValueError(
            f"const_loc: position(s) {out_of_range} out of range for a function taking {arity} "
            f"arguments"
        )
    for param in params:
        listed = param.position in const_loc
        label = f"argument {param.position} ({param.name})"
        if listed and param.access == SCALAR:
            raise BridgeValueError(
                f"const_loc: {label} is a scalar parameter; const_loc names array arguments only"
            )
        if listed and param.access in (WRITE, READWRITE):
            role = "an output" if param.access == WRITE else "updated in place"
            raise BridgeValueError(
                f"const_loc: {label} is written by the function ({param.why}: {role}), so it "
                f"cannot be read-only; remove {param.position} from const_loc, or pass "
                f"const_loc=None to use the inferred read/write sets"
            )
        if not listed and param.access == READ:
            raise BridgeValueError(
                f"const_loc: {label} is only read by the function ({param.why}), but leaving it "
                f"out of const_loc declares it written; add {param.position} to const_loc, or "
                f"pass const_loc=None to use the inferred read/write sets"
            )


# --- shapes -------------------------------------------------------------------------------

_DIM_VAR, _DIM_CONST, _DIM_EXPR = 0, 1, 2


def _dim_plan(dim: Any) -> tuple[int, Any]:
    from tvm import tirx

    if isinstance(dim, tirx.IntImm):
        return _DIM_CONST, int(dim.value)
    if isinstance(dim, tirx.Var):
        return _DIM_VAR, _handle(dim)
    return _DIM_EXPR, dim


def _evaluate(expr: Any, bindings: dict[int, int], what: str) -> int:
    """Evaluate an integer shape expression with the dimension variables bound so far."""
    from tvm import tirx

    if isinstance(expr, tirx.IntImm):
        return int(expr.value)
    if isinstance(expr, tirx.Var):
        try:
            return bindings[_handle(expr)]
        except KeyError:
            raise BridgeValueError(
                f"{what}: its size {expr} is not fixed by any input's shape or scalar argument; "
                f"pass the output array yourself"
            ) from None
    if isinstance(expr, tirx.Cast):
        return _evaluate(expr.value, bindings, what)
    binary = {
        tirx.Add: lambda a, b: a + b,
        tirx.Sub: lambda a, b: a - b,
        tirx.Mul: lambda a, b: a * b,
        tirx.FloorDiv: lambda a, b: a // b,
        tirx.FloorMod: lambda a, b: a % b,
        tirx.Div: lambda a, b: int(a / b),
        tirx.Min: min,
        tirx.Max: max,
    }
    for kind, op in binary.items():
        if isinstance(expr, kind):
            return int(op(_evaluate(expr.a, bindings, what), _evaluate(expr.b, bindings, what)))
    raise BridgeValueError(
        f"{what}: cannot compute its size {expr} from the inputs; pass the output array yourself"
    )


@dataclass(frozen=True)
class _InputPlan:
    call_position: int  # position in a call without outputs
    param: Parameter
    dims: tuple[tuple[int, Any], ...]
    np_dtype: Any
    binds_scalar: bool  # a scalar parameter that appears in some shape


@dataclass(frozen=True)
class _OutputPlan:
    param: Parameter
    dims: tuple[tuple[int, Any], ...]
    np_dtype: Any
    mx_flag: int  # MXNet's dtype flag of np_dtype


class InferredFunction(BridgedFunction):
    """A :class:`BridgedFunction` built from un-built TVM code, which knows its outputs.

    Call it with every argument (like any bridged function; returns ``None``), or without the
    output arguments: it then allocates them with MXNet (``mx.np`` if any array argument is an
    ``mx.np.ndarray``, ``mx.nd`` otherwise; on the first array argument's context), pushes the
    operation, and returns the outputs at once (one array, or a tuple in parameter order).
    """

    __slots__ = (
        "_parameters",
        "_input_plans",
        "_output_plans",
        "_n_full",
        "_n_short",
        "_default_ctx",
    )

    def __init__(
        self,
        kernel: Kernel,
        const_loc: frozenset[int],
        name: str,
        priority: int,
        parameters: tuple[Parameter, ...],
        default_ctx: Any,
    ) -> None:
        super().__init__(kernel, const_loc, name, priority)
        self._parameters = parameters
        outputs = [p for p in parameters if p.is_output]
        shape_vars = {
            _handle(d) for p in parameters for d in p.shape if _dim_plan(d)[0] == _DIM_VAR
        }
        plans = []
        for param in parameters:
            if param.is_output:
                continue
            plans.append(
                _InputPlan(
                    len(plans),
                    param,
                    tuple(_dim_plan(d) for d in param.shape),
                    mxnet_dtype(param.dtype) if param.is_buffer else None,
                    not param.is_buffer and _handle(param.var) in shape_vars,
                )
            )
        self._input_plans = tuple(plans)
        self._output_plans = tuple(
            _OutputPlan(
                p,
                tuple(_dim_plan(d) for d in p.shape),
                mxnet_dtype(p.dtype),
                dtype_flag(mxnet_dtype(p.dtype)),
            )
            for p in outputs
        )
        self._n_full = len(parameters)
        self._n_short = len(parameters) - len(outputs)
        self._default_ctx = default_ctx

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

    def __call__(self, *args: Any) -> Any:
        """Push one operation; return the allocated outputs when they were left out."""
        count = len(args)
        if count == self._n_full:
            return BridgedFunction.__call__(self, *args)
        if count != self._n_short:
            names = ", ".join(p.param.name for p in self._output_plans)
            raise BridgeTypeError(
                f"{self.name} takes {self._n_full} arguments, or {self._n_short} without its "
                f"outputs ({names}), got {count}"
            )
        outputs = self._allocate_outputs(args)
        full: list[Any] = list(args)
        for plan, array in zip(self._output_plans, outputs):
            full.insert(plan.param.position, array)
        BridgedFunction.__call__(self, *full)
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
        argument when a shape disagrees with the PrimFunc's."""
        bindings: dict[int, int] = {}
        bound_by: dict[int, tuple[_InputPlan, int]] = {}
        for plan in self._input_plans:
            value = inputs[plan.call_position]
            if plan.np_dtype is None:  # a scalar
                if (
                    plan.binds_scalar
                    and isinstance(value, numbers.Integral)
                    and not isinstance(value, bool)
                ):
                    key = _handle(plan.param.var)
                    bindings[key] = int(value)
                    bound_by[key] = (plan, -1)
                continue
            shape = value
            if len(shape) != len(plan.dims):
                raise BridgeValueError(
                    f"{_label(plan)}: expected {len(plan.dims)} dimensions "
                    f"{_show_shape(plan.param.shape)}, got shape {shape}"
                )
            for axis, (kind, payload) in enumerate(plan.dims):
                size = shape[axis]
                if kind == _DIM_VAR:
                    previous = bindings.setdefault(payload, size)
                    if previous == size:
                        bound_by.setdefault(payload, (plan, axis))
                    else:
                        raise BridgeValueError(
                            f"{_label(plan)}: dimension {axis} is {plan.param.shape[axis]} = "
                            f"{size}, but {_source(bound_by[payload])} set it to {previous} "
                            f"(shape {shape})"
                        )
                elif kind == _DIM_CONST and size != payload:
                    raise BridgeValueError(
                        f"{_label(plan)}: dimension {axis} must be {payload} "
                        f"{_show_shape(plan.param.shape)}, got shape {shape}"
                    )
        shapes = []
        for out in self._output_plans:
            shape = tuple(
                payload
                if kind == _DIM_CONST
                else bindings[payload]
                if kind == _DIM_VAR and payload in bindings
                else _evaluate(out.param.shape[axis], bindings, _what(out))
                for axis, (kind, payload) in enumerate(out.dims)
            )
            if out.param.has_strides:
                raise BridgeValueError(
                    f"{_what(out)}: the buffer declares strides, so the bridge cannot allocate "
                    f"it; pass the output array yourself"
                )
            if any(size < 0 for size in shape):
                raise BridgeValueError(f"{_what(out)}: computed a negative shape {shape}")
            shapes.append(shape)
        return shapes

    def _allocate_outputs(self, args: tuple[Any, ...]) -> list[Any]:
        # The hot path does only cheap work: messages are formatted when something is wrong.
        first_array = None
        use_np = False
        inputs: list[Any] = list(args)
        for plan in self._input_plans:
            if plan.np_dtype is None:  # a scalar
                continue
            value = args[plan.call_position]
            if not isinstance(value, NDArray):
                raise BridgeTypeError(
                    f"{_label(plan)}: expected an mx.nd.NDArray or mx.np.ndarray for the buffer "
                    f"{plan.param.name}, got {type(value).__module__}.{type(value).__qualname__}"
                )
            if first_array is None:
                first_array = value
            if not use_np and isinstance(value, _NumpyArray):
                use_np = True
            inputs[plan.call_position] = value.shape
            if value.dtype != plan.np_dtype:
                raise BridgeTypeError(
                    f"{_label(plan)}: the buffer {plan.param.name} holds {plan.param.dtype}, got "
                    f"an array of {dtype_name(value.dtype)}"
                )
        ctx = first_array.context if first_array is not None else self._default_ctx
        shapes = self.output_shapes(inputs)
        if use_np:
            return [
                _numpy_empty(shape, dtype=out.np_dtype, ctx=ctx)
                for shape, out in zip(shapes, self._output_plans)
            ]
        return [
            nd_empty(shape, out.np_dtype, out.mx_flag, ctx)
            for shape, out in zip(shapes, self._output_plans)
        ]


def _label(plan: _InputPlan) -> str:
    return f"argument {plan.call_position} ({plan.param.name})"


def _source(bound: tuple[_InputPlan, int]) -> str:
    plan, axis = bound
    return _label(plan) if axis < 0 else f"{_label(plan)} dimension {axis}"


def _what(out: _OutputPlan) -> str:
    return f"output {out.param.name} (argument {out.param.position})"


def _show_shape(shape: tuple[Any, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


#: MXNet's own spelling of bfloat16 (mshadow type flag 12): a structured numpy dtype, not
#: ml_dtypes.bfloat16, which MXNet 1.x cannot allocate.
_MXNET_BFLOAT16_FLAG = 12


def mxnet_dtype(tvm_dtype: str) -> Any:
    """The numpy dtype MXNet uses for a TVM dtype string (bfloat16 is MXNet's own)."""
    if tvm_dtype == "bfloat16":
        from mxnet.ndarray.ndarray import _DTYPE_MX_TO_NP

        return np.dtype(_DTYPE_MX_TO_NP[_MXNET_BFLOAT16_FLAG])
    return np.dtype(tvm_dtype)


def dtype_name(dtype: Any) -> str:
    """A dtype's name as MXNet and TVM users write it (MXNet's bfloat16 is no "void16")."""
    found = np.dtype(dtype)
    return "bfloat16" if found.names == ("bfloat16",) else found.name


def buffers_accept_any_offset(prim_func: Any) -> bool:
    """Whether every buffer parameter takes a view at any element offset: its elem_offset is a
    variable with offset_factor 1 (``T.match_buffer(..., offset_factor=1)``). Default buffers
    (``te.placeholder``) fix elem_offset to 0, and the built code then requires byte_offset 0."""
    from tvm import tirx

    for param in prim_func.params:
        buffer = param.ty  # TVM 0.27: a buffer parameter's Var carries its BufferType
        if not isinstance(buffer, tirx.BufferType):
            continue
        if isinstance(buffer.elem_offset, tirx.IntImm) or int(buffer.offset_factor) > 1:
            return False
    return True


def operation_name(symbol: str, parameters: tuple[Parameter, ...]) -> str:
    """The name shown in MXNet's profiler: the PrimFunc's own, or, for ``te.create_prim_func``'s
    default ``main``, the names of what it computes (its output buffers, e.g. ``z``)."""
    if symbol != "main":
        return symbol
    outputs = [p.name for p in parameters if p.is_output]
    return "_".join(outputs) if outputs else symbol


def _default_context(target: Any) -> Any:
    """Where outputs go when no array argument says: the GPU for GPU targets, else the CPU."""
    import mxnet as mx
    import tvm

    kind = tvm.target.Target(target).kind.name
    return mx.gpu(0) if kind in ("cuda", "nvptx") else mx.cpu()


def wrap_unbuilt(
    func: Any,
    const_loc: Iterable[int] | None,
    *,
    name: str | None = None,
    priority: int = 0,
    target: Any = "llvm",
) -> InferredFunction:
    """Analyse, build (``tvm.build(func, target=target)``) and wrap an un-built PrimFunc/IRModule.

    ``const_loc=None`` uses the inferred read set; an explicit ``const_loc`` must agree with it
    (a buffer the body stores to cannot be const, a buffer it only loads must be const), and
    may mark an *opaque* buffer read-only.
    """
    import tvm

    parameters = analyse(func)
    prim_func, to_build, symbol = _select_prim_func(func)
    if const_loc is None:
        positions = frozenset(p.position for p in parameters if p.access in _CONST_ACCESS)
    else:
        positions = _normalise_const_loc(const_loc)
        _check_explicit_const_loc(positions, parameters)
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
        kernel, positions, shown, priority, parameters, _default_context(target)
    )
