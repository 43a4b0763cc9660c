"""A small interpreter of TIR shape expressions: the output shapes of a call, from its inputs.

Each dimension of a buffer parameter is planned once (a constant, a dimension variable bound
by the first input that has it, or an expression evaluated once its variables are bound), so a
call only compares and looks up integers; messages are formatted only when something is wrong.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bridge_cffi.errors import BridgeValueError
from bridge_cffi.foreign_types import TirNode
from bridge_cffi.unbuilt_tvm.access import Parameter, var_handle

DIM_VAR, DIM_CONST, DIM_EXPR = 0, 1, 2


def dim_plan(dim: TirNode) -> tuple[int, TirNode]:
    """How a dimension is found at call time: (DIM_CONST, value), (DIM_VAR, its key) or
    (DIM_EXPR, the expression).
    """
    from tvm import tirx

    if isinstance(dim, tirx.IntImm):
        return DIM_CONST, int(dim.value)
    if isinstance(dim, tirx.Var):
        return DIM_VAR, var_handle(dim)
    return DIM_EXPR, dim


def evaluate(expr: TirNode, bindings: dict[int, int], what: str) -> int:
    """Evaluate an integer shape expression with the dimension variables bound so far."""
    from tvm import tirx

    if isinstance(expr, tirx.IntImm):
        return int(expr.value)
    if isinstance(expr, tirx.Var):
        try:
            return bindings[var_handle(expr)]
        except KeyError:
            raise BridgeValueError(
                f"{what}: its size {expr} is not fixed by any input's shape or scalar argument; "
                f"pass the output array yourself"
            ) from None
    if isinstance(expr, tirx.Cast):
        return evaluate(expr.value, bindings, what)
    binary: dict[TirNode, Callable[[int, int], int]] = {  # tirx node classes
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
            return int(op(evaluate(expr.a, bindings, what), evaluate(expr.b, bindings, what)))
    raise BridgeValueError(
        f"{what}: cannot compute its size {expr} from the inputs; pass the output array yourself"
    )


@dataclass(frozen=True)
class InputPlan:
    """An argument of a call without outputs, planned once."""

    call_position: int  # position in a call without outputs
    param: Parameter
    dims: tuple[tuple[int, Any], ...]
    np_dtype: Any
    binds_scalar: bool  # a scalar parameter that appears in some shape


@dataclass(frozen=True)
class OutputPlan:
    """An output the wrapper allocates, planned once."""

    param: Parameter
    dims: tuple[tuple[int, Any], ...]
    np_dtype: Any
    mx_flag: int  # MXNet's dtype flag of np_dtype


def output_shapes(
    input_plans: Sequence[InputPlan], output_plans: Sequence[OutputPlan], inputs: Sequence[Any]
) -> list[tuple[int, ...]]:
    """The output shapes of a call without outputs whose arguments are ``inputs``: a shape
    tuple for each buffer argument, the value for each scalar one. Raises naming the
    argument when a shape disagrees with the PrimFunc's.
    """
    bindings: dict[int, int] = {}
    bound_by: dict[int, tuple[InputPlan, int]] = {}
    for plan in input_plans:
        value = inputs[plan.call_position]
        if plan.np_dtype is None:  # a scalar
            if (
                plan.binds_scalar
                and isinstance(value, numbers.Integral)
                and not isinstance(value, bool)
            ):
                key = var_handle(plan.param.var)
                bindings[key] = int(value)
                bound_by[key] = (plan, -1)
            continue
        shape = value
        if len(shape) != len(plan.dims):
            raise BridgeValueError(
                f"{argument_label(plan)}: expected {len(plan.dims)} dimensions "
                f"{show_shape(plan.param.shape)}, got shape {shape}"
            )
        for axis, (kind, payload) in enumerate(plan.dims):
            size = shape[axis]
            if kind == DIM_VAR:
                previous = bindings.setdefault(payload, size)
                if previous == size:
                    bound_by.setdefault(payload, (plan, axis))
                else:
                    raise BridgeValueError(
                        f"{argument_label(plan)}: dimension {axis} is {plan.param.shape[axis]} = "
                        f"{size}, but {bound_by_label(bound_by[payload])} set it to {previous} "
                        f"(shape {shape})"
                    )
            elif kind == DIM_CONST and size != payload:
                raise BridgeValueError(
                    f"{argument_label(plan)}: dimension {axis} must be {payload} "
                    f"{show_shape(plan.param.shape)}, got shape {shape}"
                )
    shapes = []
    for out in output_plans:
        shape = tuple(
            payload
            if kind == DIM_CONST
            else bindings[payload]
            if kind == DIM_VAR and payload in bindings
            else evaluate(out.param.shape[axis], bindings, output_label(out))
            for axis, (kind, payload) in enumerate(out.dims)
        )
        if out.param.has_strides:
            raise BridgeValueError(
                f"{output_label(out)}: the buffer declares strides, so the bridge cannot allocate "
                f"it; pass the output array yourself"
            )
        if any(size < 0 for size in shape):
            raise BridgeValueError(f"{output_label(out)}: computed a negative shape {shape}")
        shapes.append(shape)
    return shapes


def argument_label(plan: InputPlan) -> str:
    """How messages name an argument of a call without outputs."""
    return f"argument {plan.call_position} ({plan.param.name})"


def bound_by_label(bound: tuple[InputPlan, int]) -> str:
    """How messages name what bound a dimension variable first."""
    plan, axis = bound
    return argument_label(plan) if axis < 0 else f"{argument_label(plan)} dimension {axis}"


def output_label(out: OutputPlan) -> str:
    """How messages name an output."""
    return f"output {out.param.name} (argument {out.param.position})"


def show_shape(shape: tuple[Any, ...]) -> str:
    """A shape as Python writes a tuple."""
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
