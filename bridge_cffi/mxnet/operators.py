"""``register_op``: a bridged kernel as a named MXNet operator, for NDArrays and Symbols alike.

MXNet offers two C-level ways in, and the operator takes the better one this MXNet has
(:func:`operator_route`; ``BRIDGE_CFFI_OPERATOR_ROUTE`` overrides it):

- ``extension_library`` (MXNet 1.9): this extension implements the C interface of MXNet's
  extension libraries (``MXLoadLib``, MX_LIBRARY_VERSION 11;
  csrc/consumers/mxnet/operators/extension_library.c) and is loaded as one after each
  registration, so the operator is a native operator of its name: ``mx.nd.<name>`` /
  ``mx.sym.<name>``, its kernel run in C inside MXNet's own engine operation, like MXNet's own
  operators.
- ``custom_op`` (MXNet 1.5.1 and later): MXNet's C custom-operator protocol
  (``MXCustomOpRegister``, driven from C by csrc/consumers/mxnet/operators/custom_op.c): the
  operator is ``mx.nd.Custom(..., op_type=name)``, its kernel run in C on MXNet's
  custom-operator worker followed by MXNet's completion operation.

Either way it sits in Symbol graphs, hybridized Gluon blocks, exported symbol files and
``SymbolBlock.imports`` (in a process that registered the same name), and Python runs only
where MXNet asks for shapes and dtypes, i.e. when a graph is built or an operator is invoked.

Called with NDArrays outside ``autograd.record()``, the returned callable skips MXNet's
operator machinery and pushes the kernel straight to the engine (the bridge's own call path,
outputs allocated by MXNet), which is several times cheaper than MXNet's custom-operator
round trip; recording, or called with Symbols, it goes through ``Custom``.
"""

from __future__ import annotations

import logging
import numbers
import os
import re
import threading
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, overload

import mxnet as mx
import numpy as np
from mxnet.ndarray import NDArray

from bridge_cffi.errors import BridgeTypeError, BridgeValueError, check, new_error_buffer
from bridge_cffi.facts.versions import operator_route as route_for
from bridge_cffi.foreign_types import KernelSource, Outputs, Symbol, Target
from bridge_cffi.mxnet.alloc import dtype_flag, nd_empty
from bridge_cffi.mxnet.function import BridgedFunction
from bridge_cffi.mxnet.interface import MxnetFunc
from bridge_cffi.mxnet.wrap import to_mxnet_func
from bridge_cffi.native import EXTENSION_PATH, CData, ffi, lib
from bridge_cffi.native_object import NativeObject
from bridge_cffi.producers.signature import FLOAT_SCALARS, INT_SCALARS, MX_DTYPE_FLAGS
from bridge_cffi.unbuilt_tvm.front_end import InferredFunction

logger = logging.getLogger(__name__)

ShapeRule = Callable[..., Sequence[Sequence[int]]]
TypeRule = Callable[..., Sequence[Any]]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DTYPE_OF_FLAG = {flag: name for name, flag in MX_DTYPE_FLAGS.items()}
#: Registered operators by name (the latest per name).
_REGISTERED: dict[str, RegisteredOp] = {}
#: Every operator ever registered: each lives as long as the process, since MXNet cannot
#: unregister one and nodes built before a name was registered again still call back into
#: their own operator's shape and type rules (through its cffi handle).
_KEPT: list[RegisteredOp] = []
#: Registration loads this extension into MXNet as a library: one at a time.
_LOCK = threading.Lock()
CUSTOM_OP = "custom_op"
EXTENSION_LIBRARY = "extension_library"
_ROUTES = {CUSTOM_OP: 1, EXTENSION_LIBRARY: 2}
#: The namespaces ``mx.nd.<namespace>`` / ``mx.sym.<namespace>`` that hold registered ops.
_NAMESPACES: dict[str, tuple[types.SimpleNamespace, types.SimpleNamespace]] = {}


@dataclass(frozen=True)
class _Scalar:
    name: str
    kind: int  # lib.BRIDGE_ARG_INT / _FLOAT / _BOOL
    dtype: str

    def parse(self, text: str) -> bool | int | float:
        """The value of MXNet's string form of this attribute."""
        if self.kind == lib.BRIDGE_ARG_BOOL:
            return text in ("True", "true", "1")
        return int(text) if self.kind == lib.BRIDGE_ARG_INT else float(text)

    def accepts(self, value: object) -> bool:
        """Whether ``value`` is what this attribute takes (cheap: no message, no string)."""
        kind = value.__class__
        if self.kind == lib.BRIDGE_ARG_FLOAT:
            return kind is float or (kind is not bool and isinstance(value, numbers.Real))
        if self.kind == lib.BRIDGE_ARG_INT:
            return kind is int or (
                kind is not bool and kind is not np.bool_ and isinstance(value, numbers.Integral)
            )
        return kind is bool or kind is np.bool_

    def check(self, value: object, op: str) -> str:
        """MXNet's string form of ``value``; raises naming the attribute when it is wrong."""
        if self.kind == lib.BRIDGE_ARG_BOOL:
            if isinstance(value, (bool, np.bool_)):
                return "True" if value else "False"
        elif self.kind == lib.BRIDGE_ARG_INT:
            if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
                return str(int(value))
        elif isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
            return repr(float(value))
        raise BridgeTypeError(
            f"{op}: attribute {self.name} must be {_KIND_NAMES[self.kind]} ({self.dtype}), "
            f"got {type(value).__name__} {value!r}"
        )


_MISSING = object()
_is_recording = mx.autograd.is_recording

_KIND_NAMES = {lib.BRIDGE_ARG_INT: "an int", lib.BRIDGE_ARG_FLOAT: "a float",
               lib.BRIDGE_ARG_BOOL: "a bool"}


def _scalar_kind(dtype: str, where: str) -> int:
    if dtype in INT_SCALARS:
        return int(lib.BRIDGE_ARG_INT)
    if dtype in FLOAT_SCALARS:
        return int(lib.BRIDGE_ARG_FLOAT)
    if dtype == "bool":
        return int(lib.BRIDGE_ARG_BOOL)
    raise BridgeTypeError(f"{where}: a scalar of dtype {dtype} cannot be an operator attribute")


@dataclass(frozen=True)
class _Layout:
    """How MXNet's arrays and the node's attributes map onto one kernel's parameters."""

    slots: tuple[tuple[int, int], ...]  # per kernel parameter: (is_scalar, index)


class RegisteredOp(NativeObject):
    """A bridged kernel registered as an MXNet operator; see :func:`register_op`.

    Call it with NDArrays (returns the outputs, pushed asynchronously) or Symbols (returns a
    Symbol); scalar parameters are keyword attributes. ``mx.nd.<namespace>.<name>`` and
    ``mx.sym.<namespace>.<name>`` (so ``F.<namespace>.<name>`` in ``hybrid_forward``) are the
    same operator.
    """

    __slots__ = (
        "_backward",
        "_forward",
        "_handle",
        "_layout",
        "_plan",
        "_shape_rule",
        "_spec_keepalive",
        "_type_rule",
        "input_type_flags",
        "inputs",
        "name",
        "outputs",
        "route",
        "scalars",
    )

    def __init__(
        self,
        name: str,
        forward: MxnetFunc,
        inputs: tuple[str, ...],
        outputs: tuple[str, ...],
        scalars: tuple[_Scalar, ...],
        shape_rule: Callable[[list[tuple[int, ...]], dict[str, Any]], list[tuple[int, ...]]],
        type_rule: Callable[[list[Any], dict[str, Any]], list[Any]],
        layout: _Layout,
        backward: MxnetFunc | None,
        route: str,
    ) -> None:
        self.name = name
        self.route = route
        self.inputs = inputs
        self.outputs = outputs
        self.scalars = scalars
        self._forward = forward
        self._backward = backward
        self._shape_rule = shape_rule
        self._type_rule = type_rule
        self._layout = layout
        # Un-built code is called without its outputs: per such argument, whether it is the
        # i-th input array, else the attribute of that name.
        self._plan: tuple[tuple[bool, int, str], ...] = ()
        if isinstance(forward, InferredFunction):
            plan, arrays = [], 0
            for p in forward.parameters:
                if p.is_output:
                    continue
                plan.append((p.is_buffer, arrays, p.name))
                arrays += p.is_buffer
            self._plan = tuple(plan)
        #: per input, the MXNet dtype flag the kernel takes, -1 where a rule decides
        self.input_type_flags: tuple[int, ...] = (
            tuple(MX_DTYPE_FLAGS[np.dtype(d).name] for d in forward.input_dtypes if d is not None)
            if isinstance(forward, InferredFunction)
            else tuple(-1 for _ in inputs)
        )
        self._handle = ffi.new_handle(self)
        self._spec_keepalive: list[Any] = []

    def __repr__(self) -> str:
        attrs = ", ".join(f"{s.name}: {s.dtype}" for s in self.scalars)
        grad = "differentiable" if self._backward is not None else "no gradient"
        return (f"<RegisteredOp {self.name}({', '.join(self.inputs)}; {attrs}) -> "
                f"{', '.join(self.outputs)}, {grad}, {self.route}>")

    def _pickle_advice(self) -> str:
        return (f"the operator {self.name!r}: register it again in the other process with "
                "bridge_cffi.register_op; exported symbol files refer to it by name")

    # ---- calls ----

    def __call__(
        self, *inputs: NDArray | Symbol, name: str | None = None, **attrs: object
    ) -> Outputs:
        """Apply the operator: NDArrays in, NDArrays out (asynchronous); or Symbols in, a
        Symbol out. Scalar parameters are keyword attributes.
        """
        if any(isinstance(x, mx.sym.Symbol) for x in inputs):
            return self.symbol(*inputs, name=name, **attrs)
        return self.ndarray(*inputs, **attrs)

    def _attributes(self, attrs: dict[str, Any]) -> dict[str, str]:
        known = {s.name: s for s in self.scalars}
        unknown = sorted(set(attrs) - set(known))
        if unknown:
            raise BridgeTypeError(
                f"{self.name}: unknown attribute(s) {', '.join(unknown)}; its attributes are "
                f"{', '.join(known) or 'none'}"
            )
        missing = [s.name for s in self.scalars if s.name not in attrs]
        if missing:
            raise BridgeTypeError(f"{self.name}: missing attribute(s) {', '.join(missing)}")
        return {s.name: s.check(attrs[s.name], self.name) for s in self.scalars}

    def _check_count(self, inputs: tuple[Any, ...]) -> None:
        if len(inputs) != len(self.inputs):
            raise BridgeTypeError(
                f"{self.name} takes {len(self.inputs)} input(s) ({', '.join(self.inputs)}), "
                f"got {len(inputs)}"
            )

    def symbol(self, *inputs: Symbol, name: str | None = None, **attrs: object) -> Symbol:
        """The operator applied to Symbols: a ``Custom`` node with ``op_type`` this name."""
        self._check_count(inputs)
        for position, x in enumerate(inputs):
            if not isinstance(x, mx.sym.Symbol):
                raise BridgeTypeError(
                    f"{self.name}: input {position} ({self.inputs[position]}) must be a Symbol "
                    f"like the others, got {type(x).__name__}"
                )
        kwargs = self._attributes(attrs)
        if name is not None:
            kwargs["name"] = name
        if self.route == EXTENSION_LIBRARY:
            return getattr(mx.sym, self.name)(*inputs, **kwargs)
        return mx.sym.Custom(*inputs, op_type=self.name, **kwargs)

    def via_mxnet(self, *inputs: NDArray, **attrs: object) -> Outputs:
        """The operator on NDArrays through MXNet's own operator invocation (as recording
        does): ``mx.nd.<name>`` or ``mx.nd.Custom``, whichever its route registered.
        """
        self._check_count(inputs)
        strings = self._attributes(attrs)
        if self.route == EXTENSION_LIBRARY:
            return getattr(mx.nd, self.name)(*inputs, **strings)
        return mx.nd.Custom(*inputs, op_type=self.name, **strings)

    def ndarray(self, *inputs: NDArray, **attrs: object) -> Outputs:
        """The operator applied to NDArrays: outputs allocated and returned at once."""
        # The common call is checked by cheap tests only; any doubt takes the path that
        # explains itself (_check_count, _attributes, the messages below).
        if len(inputs) != len(self.inputs) or len(attrs) != len(self.scalars):
            self._check_count(inputs)
            self._attributes(attrs)
        for scalar in self.scalars:
            if not scalar.accepts(attrs.get(scalar.name, _MISSING)):
                self._attributes(attrs)
        for position, x in enumerate(inputs):
            if not isinstance(x, NDArray):
                raise BridgeTypeError(
                    f"{self.name}: input {position} ({self.inputs[position]}) must be an "
                    f"mx.nd.NDArray, got {type(x).__name__}"
                )
        if _is_recording():
            # Recorded through MXNet's operator, so its backward is the C one registered here.
            return self.via_mxnet(*inputs, **attrs)
        return self._push(inputs, attrs)

    def _push(self, inputs: tuple[NDArray, ...], values: dict[str, Any]) -> Outputs:
        forward = self._forward
        if isinstance(forward, InferredFunction):
            return forward(
                *[inputs[i] if is_array else values[name] for is_array, i, name in self._plan]
            )
        shapes = self._shape_rule([x.shape for x in inputs], values)
        dtypes = self._type_rule([x.dtype for x in inputs], values)
        ctx = inputs[0].context if inputs else mx.cpu()
        outputs = [
            nd_empty(tuple(s), d, dtype_flag(d), ctx) for s, d in zip(shapes, dtypes, strict=False)
        ]
        forward(*self._full_arguments(inputs, outputs, values))
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def _full_arguments(
        self, inputs: Sequence[Any], outputs: Sequence[Any], values: dict[str, Any]
    ) -> list[Any]:
        slots = self._layout.slots
        scalars = [values[s.name] for s in self.scalars]
        arrays = [*inputs, *outputs]
        return [scalars[i] if is_scalar else arrays[i] for is_scalar, i in slots]

    # ---- shape and type rules (graph-build time) ----

    def infer_shapes(self, attrs: dict[str, str], shapes: list[tuple[int, ...]]) -> list[Any]:
        """Output shapes for input ``shapes`` and a node's string attributes."""
        values = {s.name: s.parse(attrs[s.name]) for s in self.scalars if s.name in attrs}
        return [tuple(int(d) for d in shape) for shape in self._shape_rule(shapes, values)]

    def infer_types(self, attrs: dict[str, str], flags: list[int]) -> list[int]:
        """Output dtype flags for input dtype flags (-1 unknown) and a node's attributes."""
        values = {s.name: s.parse(attrs[s.name]) for s in self.scalars if s.name in attrs}
        dtypes = [None if f < 0 else np.dtype(_DTYPE_OF_FLAG[f]) for f in flags]
        return [MX_DTYPE_FLAGS[np.dtype(d).name] for d in self._type_rule(dtypes, values)]


# ---- C callbacks (graph-build time, on the thread MXNet infers on) ----


def _attrs(num: int, keys: CData, values: CData) -> dict[str, str]:
    return {ffi.string(keys[i]).decode(): ffi.string(values[i]).decode() for i in range(num)}


def _report(error: CData, exc: BaseException) -> int:
    message = str(exc) or type(exc).__name__
    data = message.encode("utf-8", "replace")[: lib.BRIDGE_ERROR_CAPACITY - 1]
    ffi.memmove(error, data + b"\0", len(data) + 1)
    return 1


@ffi.def_extern()
def bridge_py_infer_shape(
    context: CData, num_attrs: int, keys: CData, values: CData, num_inputs: int,
    in_ndims: CData, in_dims: CData, num_outputs: int, out_ndims: CData, out_dims: CData,
    error: CData,
) -> int:
    """MXNet asks a registered operator for its output shapes."""
    try:
        op: RegisteredOp = ffi.from_handle(context)
        width = lib.BRIDGE_OP_MAX_DIMS
        shapes = [tuple(in_dims[i * width + d] for d in range(in_ndims[i]))
                  for i in range(num_inputs)]
        result = op.infer_shapes(_attrs(num_attrs, keys, values), shapes)
        if len(result) != num_outputs:
            raise BridgeValueError(f"the shape rule gave {len(result)} shapes for "  # noqa: TRY301 - reported to MXNet below, like any error
                                   f"{num_outputs} output(s)")
        for j, shape in enumerate(result):
            if len(shape) > width:
                raise BridgeValueError(f"output {j} has more than {width} dimensions")  # noqa: TRY301 - as above
            out_ndims[j] = len(shape)
            for d, size in enumerate(shape):
                out_dims[j * width + d] = size
        return 0
    except Exception as exc:  # noqa: BLE001 - every error becomes MXNet's, with its message
        return _report(error, exc)


@ffi.def_extern()
def bridge_py_infer_type(
    context: CData, num_attrs: int, keys: CData, values: CData, num_inputs: int,
    in_types: CData, num_outputs: int, out_types: CData, error: CData,
) -> int:
    """MXNet asks a registered operator for its output dtypes."""
    try:
        op: RegisteredOp = ffi.from_handle(context)
        flags = [in_types[i] for i in range(num_inputs)]
        result = op.infer_types(_attrs(num_attrs, keys, values), flags)
        for i, flag in enumerate(op.input_type_flags):
            if in_types[i] < 0 and flag >= 0:
                in_types[i] = flag  # what the kernel takes, for MXNet's backward inference
        if len(result) != num_outputs:
            raise BridgeValueError(f"the type rule gave {len(result)} dtypes for "  # noqa: TRY301 - reported to MXNet below
                                   f"{num_outputs} output(s)")
        for j, flag in enumerate(result):
            out_types[j] = flag
        return 0
    except Exception as exc:  # noqa: BLE001 - every error becomes MXNet's, with its message
        return _report(error, exc)


# ---- building an operator from what the user hands over ----


def _from_inferred(
    name: str, func: InferredFunction
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[_Scalar, ...], _Layout, Any, Any]:
    """Inputs, outputs, scalars, forward layout and rules of un-built TVM code."""
    inputs: list[str] = []
    outputs: list[str] = []
    scalars: list[_Scalar] = []
    for p in func.parameters:
        if not p.is_buffer:
            scalars.append(_Scalar(p.name, _scalar_kind(p.dtype, f"{name}: {p.name}"), p.dtype))
        elif p.is_output:
            outputs.append(p.name)
        elif p.position in func.const_loc:
            inputs.append(p.name)
        else:
            raise BridgeValueError(
                f"func: argument {p.position} ({p.name}) is updated in place ({p.why}); an "
                f"operator only reads its inputs and writes its outputs"
            )
    if not outputs:
        raise BridgeValueError("func: the function writes no output buffer to return")
    n_in = len(inputs)
    slots: list[tuple[int, int]] = []
    counts = {"in": 0, "out": 0, "scalar": 0}
    for p in func.parameters:
        if not p.is_buffer:
            slots.append((1, counts["scalar"]))
            counts["scalar"] += 1
        elif p.is_output:
            slots.append((0, n_in + counts["out"]))
            counts["out"] += 1
        else:
            slots.append((0, counts["in"]))
            counts["in"] += 1

    def shape_rule(shapes: list[tuple[int, ...]], values: dict[str, Any]) -> list[Any]:
        arrays = iter(shapes)
        call = [next(arrays) if p.is_buffer else values.get(p.name)
                for p in func.parameters if not p.is_output]
        return func.output_shapes(call)

    expected = [d for d in func.input_dtypes if d is not None]

    def type_rule(dtypes: list[Any], values: dict[str, Any]) -> list[Any]:  # noqa: ARG001 - a rule's signature
        for position, (got, want) in enumerate(zip(dtypes, expected, strict=False)):
            if got is not None and np.dtype(got) != want:
                raise BridgeTypeError(
                    f"input {position} ({inputs[position]}) must be {np.dtype(want).name}, got "
                    f"{np.dtype(got).name}"
                )
        return list(func.output_dtypes)

    return (tuple(inputs), tuple(outputs), tuple(scalars), _Layout(tuple(slots)), shape_rule,
            type_rule)


def _backward_layout(
    forward: InferredFunction, backward: InferredFunction, save_outputs: bool, n_in: int,
    n_out: int,
) -> tuple[_Layout, list[tuple[int, int]]]:
    """Where each parameter of ``backward`` comes from in MXNet's backward array list
    (output gradients, inputs, outputs, input gradients) and which arrays it reads.
    """
    forward_args = [p for p in forward.parameters if not p.is_output]
    slots: list[tuple[int, int]] = []
    position = 0  # among backward's non-output parameters
    grads = 0
    for p in backward.parameters:
        if p.is_output:
            slots.append((0, 2 * n_out + n_in + grads))
            grads += 1
            continue
        if position < len(forward_args):
            source = forward_args[position]
            before = forward_args[:position]
            if source.is_buffer:
                slots.append((0, n_out + sum(1 for q in before if q.is_buffer)))
            else:
                slots.append((1, sum(1 for q in before if not q.is_buffer)))
        elif save_outputs and position < len(forward_args) + n_out:
            slots.append((0, n_out + n_in + position - len(forward_args)))
        else:
            slots.append((0, position - len(forward_args) - (n_out if save_outputs else 0)))
        position += 1
    dependencies = [(1, i) for i in range(n_in)]
    if save_outputs:
        dependencies += [(2, j) for j in range(n_out)]
    dependencies += [(0, j) for j in range(n_out)]
    return _Layout(tuple(slots)), dependencies


def _from_compiled(
    name: str, func: MxnetFunc, infer_shape: ShapeRule | None, infer_type: TypeRule | None
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[_Scalar, ...], _Layout, Any, Any]:
    """The same for compiled code whose parameters TVM's embedded signature names."""
    signature = func.kernel.signature
    if signature is None:
        raise BridgeTypeError(
            f"func: {func.name} does not say which parameters are arrays and which scalars "
            f"(no TVM signature); register un-built TVM code, or a module built by TVM"
        )
    if infer_shape is None:
        raise BridgeTypeError(
            "infer_shape: compiled code does not say how its output shapes follow from its "
            "inputs; pass infer_shape(in_shapes, **attrs) -> out_shapes, or register the "
            "un-built PrimFunc"
        )
    inputs, outputs, scalars = [], [], []
    for position, p in enumerate(signature.parameters):
        if not p.tensor:
            scalars.append(_Scalar(p.name, _scalar_kind(p.dtype, f"{name}: {p.name}"), p.dtype))
        elif position in func.const_loc:
            inputs.append(p)
        else:
            outputs.append(p)
    if not outputs:
        raise BridgeValueError("const_loc: every array is read; an operator needs an output")
    slots, counts = [], {"in": 0, "out": 0, "scalar": 0}
    for position, p in enumerate(signature.parameters):
        if not p.tensor:
            slots.append((1, counts["scalar"]))
            counts["scalar"] += 1
        elif position in func.const_loc:
            slots.append((0, counts["in"]))
            counts["in"] += 1
        else:
            slots.append((0, len(inputs) + counts["out"]))
            counts["out"] += 1
    user_shape: ShapeRule = infer_shape
    user_type = infer_type

    def shape_rule(shapes: list[tuple[int, ...]], values: dict[str, Any]) -> list[Any]:
        return [tuple(s) for s in user_shape(shapes, **values)]

    def type_rule(dtypes: list[Any], values: dict[str, Any]) -> list[Any]:
        if user_type is not None:
            return list(user_type(dtypes, **values))
        return [np.dtype(p.dtype) for p in outputs]

    return (tuple(p.name for p in inputs), tuple(p.name for p in outputs), tuple(scalars),
            _Layout(tuple(slots)), shape_rule, type_rule)


def _native_call(
    keepalive: list[object], func: MxnetFunc | None, layout: _Layout | None
) -> CData:
    call = ffi.new("bridge_op_call*")
    if func is None or layout is None:
        call.kernel = ffi.NULL
        return call
    slots = ffi.new("bridge_op_slot[]", max(len(layout.slots), 1))
    # strict=False: the C array has one slot even for an empty layout.
    for slot, (is_scalar, index) in zip(slots, layout.slots, strict=False):
        slot.is_scalar = is_scalar
        slot.index = index
    keepalive += [slots, func]
    call.kernel = func.kernel.pointer
    call.num_slots = len(layout.slots)
    call.slots = slots
    return call


def _strings(keepalive: list[object], names: Sequence[str]) -> CData:
    owned = [ffi.new("char[]", n.encode()) for n in names]
    array = ffi.new("const char*[]", max(len(owned), 1))
    for i, s in enumerate(owned):
        array[i] = s
    keepalive += [owned, array]
    return array


def _namespace(namespace: str) -> tuple[types.SimpleNamespace, types.SimpleNamespace]:
    if namespace not in _NAMESPACES:
        for module in (mx.nd, mx.sym):
            existing = getattr(module, namespace, None)
            if existing is not None and not isinstance(existing, types.SimpleNamespace):
                raise BridgeValueError(
                    f"namespace: mx.{module.__name__.split('.')[-1]}.{namespace} exists already "
                    f"in MXNet; choose another namespace"
                )
        spaces = (types.SimpleNamespace(), types.SimpleNamespace())
        mx.nd.__dict__.setdefault(namespace, spaces[0])
        mx.sym.__dict__.setdefault(namespace, spaces[1])
        _NAMESPACES[namespace] = (getattr(mx.nd, namespace), getattr(mx.sym, namespace))
    return _NAMESPACES[namespace]


def operator_route() -> str:
    """How operators reach MXNet here: ``extension_library`` where MXNet implements the
    extension-library interface this extension does (MXNet 1.9, MX_LIBRARY_VERSION 11), else
    ``custom_op``. ``BRIDGE_CFFI_OPERATOR_ROUTE`` chooses one explicitly.
    """
    chosen = os.environ.get("BRIDGE_CFFI_OPERATOR_ROUTE")
    if chosen:
        if chosen not in _ROUTES:
            raise BridgeValueError(
                f"BRIDGE_CFFI_OPERATOR_ROUTE: expected {' or '.join(_ROUTES)}, got {chosen!r}"
            )
        return chosen
    from packaging.version import Version

    return route_for(Version(mx.__version__.split(".post")[0]))


def _load_as_library(name: str) -> None:
    """Have MXNet load this extension as a library, which registers the pending operators."""
    path = os.path.abspath(EXTENSION_PATH)
    mx.library.load(path, verbose=False)
    if not hasattr(mx.nd, name):
        raise BridgeValueError(f"register_op({name!r}): MXNet loaded {path} but has no {name}")


# func given (KernelSource is Any, which None matches too: this overload comes first).
@overload
def register_op(
    name: str,
    func: KernelSource,
    const_loc: Sequence[int] | None = None,
    *,
    infer_shape: ShapeRule | None = None,
    infer_type: TypeRule | None = None,
    namespace: str = "bridge",
    target: Target = None,
) -> RegisteredOp: ...


@overload
def register_op(
    name: str,
    func: None = None,
    const_loc: Sequence[int] | None = None,
    *,
    infer_shape: ShapeRule | None = None,
    infer_type: TypeRule | None = None,
    namespace: str = "bridge",
    target: Target = None,
) -> Callable[[KernelSource], RegisteredOp]: ...


def register_op(
    name: str,
    func: KernelSource = None,
    const_loc: Sequence[int] | None = None,
    *,
    infer_shape: ShapeRule | None = None,
    infer_type: TypeRule | None = None,
    namespace: str = "bridge",
    target: Target = None,
) -> RegisteredOp | Callable[[KernelSource], RegisteredOp]:
    """Register ``func`` as the MXNet operator ``name``; returns the :class:`RegisteredOp`.

    ``func`` is un-built TVM code (a PrimFunc/IRModule, or what ``to_mxnet_func`` made of
    one: inputs, outputs, scalars, shapes and dtypes all come from it), the pair
    ``bridge_cffi.differentiable(forward, backward)`` (the operator then has a gradient), or
    code compiled by TVM with ``const_loc`` naming its inputs (every other array is an output)
    and ``infer_shape(in_shapes, **attrs) -> out_shapes`` / ``infer_type(in_dtypes, **attrs)
    -> out_dtypes`` (default: the signature's dtypes), which run when MXNet builds a graph,
    never on the engine. Scalar parameters become keyword attributes of the operator.

    Without ``func`` it returns a decorator. The operator is also
    ``mx.nd.<namespace>.<name>`` and ``mx.sym.<namespace>.<name>``.
    """
    if func is None:

        def decorate(f: KernelSource) -> RegisteredOp:
            return register_op(name, f, const_loc, infer_shape=infer_shape,
                               infer_type=infer_type, namespace=namespace, target=target)

        return decorate
    if not isinstance(name, str) or not _NAME.match(name):
        raise BridgeValueError(f"name: expected an identifier, got {name!r}")
    if not isinstance(namespace, str) or not _NAME.match(namespace):
        raise BridgeValueError(f"namespace: expected an identifier, got {namespace!r}")
    from bridge_cffi.mxnet.autograd import DifferentiableFunction

    backward: InferredFunction | None = None
    save_outputs = False
    if isinstance(func, DifferentiableFunction):
        if const_loc is not None:
            raise BridgeValueError("const_loc: the differentiable pair knows its inputs already")
        forward: MxnetFunc = func.forward
        backward, save_outputs = func.backward, func.save_outputs
    elif isinstance(func, BridgedFunction):
        forward = func
    else:
        forward = to_mxnet_func(func, const_loc, name=name, target=target)
    if isinstance(forward, InferredFunction):
        if infer_shape is not None or infer_type is not None:
            raise BridgeValueError(
                "infer_shape/infer_type: un-built TVM code gives shapes and dtypes itself"
            )
        inputs, outputs, scalars, layout, shape_rule, type_rule = _from_inferred(name, forward)
    else:
        inputs, outputs, scalars, layout, shape_rule, type_rule = _from_compiled(
            name, forward, infer_shape, infer_type
        )
    route = operator_route()
    if route == EXTENSION_LIBRARY and hasattr(mx.nd, name) and name not in _REGISTERED:
        raise BridgeValueError(f"name: MXNet has an operator {name!r} already; choose another")
    op = RegisteredOp(
        name, forward, inputs, outputs, scalars, shape_rule, type_rule, layout, backward, route
    )
    keepalive = op._spec_keepalive
    spec = ffi.new("bridge_op_spec*")
    name_bytes = ffi.new("char[]", name.encode())
    keepalive.append(name_bytes)
    spec.name = name_bytes
    spec.num_inputs = len(inputs)
    spec.num_outputs = len(outputs)
    spec.num_scalars = len(scalars)
    spec.input_names = _strings(keepalive, inputs)
    spec.output_names = _strings(keepalive, outputs)
    spec.scalar_names = _strings(keepalive, [s.name for s in scalars])
    kinds = ffi.new("int32_t[]", [s.kind for s in scalars] or [0])
    keepalive.append(kinds)
    spec.scalar_kinds = kinds
    spec.forward = _native_call(keepalive, forward, layout)[0]
    dependencies: list[tuple[int, int]] = []
    if backward is not None:
        assert isinstance(forward, InferredFunction)  # noqa: S101 - for mypy: a pair's forward is
        # un-built code (differentiable() makes both InferredFunctions)
        backward_layout, dependencies = _backward_layout(
            forward, backward, save_outputs, len(inputs), len(outputs)
        )
        spec.backward = _native_call(keepalive, backward, backward_layout)[0]
    else:
        spec.backward = _native_call(keepalive, None, None)[0]
    deps = ffi.new("bridge_op_dependency[]", max(len(dependencies), 1))
    # strict=False: the C array has one entry even for no dependencies.
    for dep, (group, index) in zip(deps, dependencies, strict=False):
        dep.group = group
        dep.index = index
    keepalive.append(deps)
    spec.num_backward_dependencies = len(dependencies)
    spec.backward_dependencies = deps
    spec.context = op._handle
    spec.infer_shape = lib.bridge_py_infer_shape
    spec.infer_type = lib.bridge_py_infer_type
    error = new_error_buffer()
    with _LOCK:
        check(lib.bridge_op_register(spec, _ROUTES[route], error), error, f"register_op({name!r})")
        if route == EXTENSION_LIBRARY:
            _load_as_library(name)
    if name in _REGISTERED:
        logger.info("register_op: %s registered again; new nodes use the new kernel", name)
    _REGISTERED[name] = op
    _KEPT.append(op)
    nd_space, sym_space = _namespace(namespace)
    setattr(nd_space, name, op.ndarray)
    setattr(sym_space, name, op.symbol)
    return op
