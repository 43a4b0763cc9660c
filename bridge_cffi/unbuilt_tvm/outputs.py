"""The outputs of un-built TVM code: their dtypes, their plans, and their allocation by MXNet."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from mxnet.ndarray import NDArray

try:  # mx.np arrived in MXNet 1.6; older MXNet only has mx.nd arrays.
    from mxnet.numpy import empty as _numpy_empty
    from mxnet.numpy import ndarray as _NumpyArray  # noqa: N812 - a class, named as one
except ImportError:  # pragma: no cover - exercised by the MXNet 1.5.1 matrix cell
    _numpy_empty = None

    class _NumpyArray:  # type: ignore[no-redef]
        """Stands in for mx.np.ndarray where MXNet has none: nothing is an instance of it."""


from bridge_cffi.errors import BridgeTypeError
from bridge_cffi.foreign_types import Context, DType
from bridge_cffi.mxnet.alloc import dtype_flag, nd_empty
from bridge_cffi.unbuilt_tvm.access import Parameter, var_handle
from bridge_cffi.unbuilt_tvm.shapes import (
    DIM_VAR,
    InputPlan,
    OutputPlan,
    argument_label,
    dim_plan,
    output_shapes,
)

#: MXNet's own spelling of bfloat16 (mshadow type flag 12): a structured numpy dtype, not
#: ml_dtypes.bfloat16, which MXNet 1.x cannot allocate.
_MXNET_BFLOAT16_FLAG = 12


def mxnet_dtype(tvm_dtype: str) -> np.dtype[Any]:
    """The numpy dtype MXNet uses for a TVM dtype string (bfloat16 is MXNet's own)."""
    if tvm_dtype == "bfloat16":
        from mxnet.ndarray.ndarray import _DTYPE_MX_TO_NP

        return np.dtype(_DTYPE_MX_TO_NP[_MXNET_BFLOAT16_FLAG])
    return np.dtype(tvm_dtype)


def dtype_name(dtype: DType) -> str:
    """A dtype's name as MXNet and TVM users write it (MXNet's bfloat16 is no "void16")."""
    found = np.dtype(dtype)
    return "bfloat16" if found.names == ("bfloat16",) else found.name



def plan_call(
    parameters: Sequence[Parameter],
) -> tuple[tuple[InputPlan, ...], tuple[OutputPlan, ...]]:
    """The plans of a call without outputs: one per argument passed, one per output."""
    outputs = [p for p in parameters if p.is_output]
    shape_vars = {
        var_handle(d) for p in parameters for d in p.shape if dim_plan(d)[0] == DIM_VAR
    }
    plans: list[InputPlan] = []
    for param in parameters:
        if param.is_output:
            continue
        plans.append(
            InputPlan(
                len(plans),
                param,
                tuple(dim_plan(d) for d in param.shape),
                mxnet_dtype(param.dtype) if param.is_buffer else None,
                not param.is_buffer and var_handle(param.var) in shape_vars,
            )
        )
    output_plans = tuple(
        OutputPlan(
            p,
            tuple(dim_plan(d) for d in p.shape),
            mxnet_dtype(p.dtype),
            dtype_flag(mxnet_dtype(p.dtype)),
        )
        for p in outputs
    )
    return tuple(plans), output_plans


def allocate_outputs(
    input_plans: Sequence[InputPlan],
    output_plans: Sequence[OutputPlan],
    args: tuple[object, ...],
    default_ctx: Context,
) -> list[NDArray]:
    """New MXNet arrays for the outputs of a call without them, whose arguments are ``args``:
    ``mx.np`` arrays if any array argument is one, else ``mx.nd``; on the first array
    argument's context, else ``default_ctx``.
    """
    # The hot path does only cheap work: messages are formatted when something is wrong.
    first_array = None
    use_np = False
    inputs: list[Any] = list(args)
    for plan in input_plans:
        if plan.np_dtype is None:  # a scalar
            continue
        value = args[plan.call_position]
        if not isinstance(value, NDArray):
            raise BridgeTypeError(
                f"{argument_label(plan)}: expected an mx.nd.NDArray or mx.np.ndarray for the "
                f"buffer {plan.param.name}, got {type(value).__module__}.{type(value).__qualname__}"
            )
        if first_array is None:
            first_array = value
        if not use_np and isinstance(value, _NumpyArray):
            use_np = True
        inputs[plan.call_position] = value.shape
        if value.dtype != plan.np_dtype:
            raise BridgeTypeError(
                f"{argument_label(plan)}: the buffer {plan.param.name} holds {plan.param.dtype}, "
                f"got an array of {dtype_name(value.dtype)}"
            )
    ctx = first_array.context if first_array is not None else default_ctx
    shapes = output_shapes(input_plans, output_plans, inputs)
    if use_np:
        return [
            _numpy_empty(shape, dtype=out.np_dtype, ctx=ctx)
            for shape, out in zip(shapes, output_plans, strict=False)
        ]
    return [
        nd_empty(shape, out.np_dtype, out.mx_flag, ctx)
        for shape, out in zip(shapes, output_plans, strict=False)
    ]
