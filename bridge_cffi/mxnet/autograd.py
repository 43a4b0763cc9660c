"""Autograd: pair a forward and a backward bridged function into one differentiable operation.

``differentiable(forward, backward)`` returns a callable that ``mx.autograd.record()`` sees as
one operation: calling it pushes ``forward`` through the bridge (allocating its outputs), and
``loss.backward()`` pushes ``backward`` through the bridge, writing straight into MXNet's
gradient buffers. Both are functions with inferred outputs (un-built TVM code, see
:mod:`bridge_cffi.unbuilt_tvm.front_end`).

Argument convention. Say ``forward`` has non-output arguments ``a_0 .. a_k`` (arrays and
scalars, in order) and outputs ``y_0 .. y_m``. Then ``backward``'s non-output arguments are

    a_0 .. a_k,  [y_0 .. y_m if save_outputs],  dy_0 .. dy_m

and its outputs are the gradients of forward's *array* arguments, in order. Scalars are not
differentiated.
"""

from __future__ import annotations

import ctypes
import traceback
from ctypes import CFUNCTYPE, c_int, c_void_p, cast

import mxnet as mx
from mxnet.base import _LIB, MXCallbackList, NDArrayHandle, c_array, c_handle_array, check_call
from mxnet.ndarray import NDArray

from bridge_cffi.errors import BridgeTypeError, BridgeValueError
from bridge_cffi.foreign_types import KernelSource, Outputs
from bridge_cffi.unbuilt_tvm.front_end import OPAQUE, READWRITE, InferredFunction

# MXNet's OpReqType, as handed to a custom function's backward.
_REQ_NULL, _REQ_WRITE, _REQ_INPLACE, _REQ_ADD = 0, 1, 2, 3


def _as_inferred(func: KernelSource, role: str, name: str | None) -> InferredFunction:
    if isinstance(func, InferredFunction):
        return func
    from bridge_cffi.mxnet.wrap import is_unbuilt_tvm, to_mxnet_func

    if is_unbuilt_tvm(func):
        wrapped = to_mxnet_func(func, name=name)
        assert isinstance(wrapped, InferredFunction)  # noqa: S101 - for mypy: un-built code gives one
        return wrapped
    raise BridgeTypeError(
        f"{role}: expected an un-built TVM PrimFunc/IRModule or the function "
        f"to_mxnet_func made from one (its outputs must be known), got {type(func).__name__}"
    )


class DifferentiableFunction:
    """A forward/backward pair of bridged functions that ``mx.autograd`` can record."""

    __slots__ = ("_array_positions", "_n_args", "_n_outputs", "backward", "forward", "save_outputs")

    def __init__(
        self, forward: InferredFunction, backward: InferredFunction, save_outputs: bool
    ) -> None:
        self.forward = forward
        self.backward = backward
        self.save_outputs = save_outputs
        params = forward.parameters
        in_place = [p for p in params if p.access in (READWRITE, OPAQUE)]
        if in_place:
            p = in_place[0]
            raise BridgeValueError(
                f"forward: argument {p.position} ({p.name}) is updated in place or used opaquely "
                f"({p.why}); a differentiable function must only read its inputs and write its "
                f"outputs"
            )
        inputs = [p for p in params if not p.is_output]
        self._n_args = len(inputs)
        self._n_outputs = len(forward.outputs)
        if self._n_outputs == 0:
            raise BridgeValueError("forward: the function has no output buffer to differentiate")
        self._array_positions = tuple(i for i, p in enumerate(inputs) if p.is_buffer)
        expected_args = self._n_args + self._n_outputs * (2 if save_outputs else 1)
        backward_args = len(backward.parameters) - len(backward.outputs)
        layout = (
            f"forward's {self._n_args} argument(s), "
            + (f"its {self._n_outputs} output(s), " if save_outputs else "")
            + f"then {self._n_outputs} output gradient(s)"
        )
        if backward_args != expected_args:
            raise BridgeValueError(
                f"backward: takes {backward_args} non-output argument(s), expected "
                f"{expected_args}: {layout}"
            )
        if len(backward.outputs) != len(self._array_positions):
            raise BridgeValueError(
                f"backward: writes {len(backward.outputs)} output(s), expected one gradient per "
                f"array argument of forward ({len(self._array_positions)})"
            )

    def __repr__(self) -> str:
        return f"<DifferentiableFunction forward={self.forward.name} backward={self.backward.name}>"

    def __call__(self, *args: object) -> Outputs:
        """Run forward (pushed, outputs returned at once); recorded when autograd records."""
        if len(args) != self._n_args:
            raise BridgeTypeError(
                f"{self.forward.name} takes {self._n_args} arguments (outputs are allocated), "
                f"got {len(args)}"
            )
        arrays = [args[i] for i in self._array_positions]
        for position, array in zip(self._array_positions, arrays, strict=True):
            if not isinstance(array, NDArray):
                raise BridgeTypeError(
                    f"argument {position}: expected an mx.nd.NDArray or mx.np.ndarray, got "
                    f"{type(array).__name__}"
                )
        return BridgedAutogradFunction(self, args)(*arrays)


class BridgedAutogradFunction(mx.autograd.Function):  # type: ignore[misc]
    """One recorded application of a :class:`DifferentiableFunction` (single use).

    ``forward``/``backward`` follow ``mx.autograd.Function``. ``__call__`` records like
    ``mx.autograd.Function.__call__`` does, except that the backward pass writes gradients
    straight into MXNet's gradient buffers (no copy) and honours every gradient request:
    MXNet 1.9.1's own ``Function`` stops at the first ``grad_req='null'`` input and never adds
    for ``grad_req='add'``.
    """

    #: Set by mx.autograd.Function.__init__ (MXNet ships no types, so declared here).
    _used: bool

    def __init__(self, op: DifferentiableFunction, args: tuple[object, ...]) -> None:
        super().__init__()
        self._op = op
        self._args = args
        self._outputs: tuple[NDArray, ...] = ()

    def forward(self, *arrays: NDArray) -> Outputs:  # noqa: ARG002 - mx.autograd.Function's
        """Run the forward function on every argument (``arrays`` are its array ones)."""
        outputs = self._op.forward(*self._args)
        self._outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        return outputs

    def _backward_args(self, output_grads: tuple[NDArray, ...]) -> list[object]:
        saved = self._outputs if self._op.save_outputs else ()
        return [*self._args, *saved, *output_grads]

    def backward(self, *output_grads: NDArray) -> Outputs:
        """Run the backward function; returns the input gradients it allocated."""
        return self._op.backward(*self._backward_args(output_grads))

    def _backward_into(
        self, output_grads: tuple[NDArray, ...], input_grads: list[NDArray], reqs: list[int]
    ) -> None:
        if all(req == _REQ_NULL for req in reqs):
            return
        args = self._backward_args(output_grads)
        pending_adds = []
        targets = []
        for grad, req in zip(input_grads, reqs, strict=True):
            if req in (_REQ_WRITE, _REQ_INPLACE):
                targets.append(grad)
            else:  # null: scratch the kernel writes and nobody reads; add: added afterwards
                scratch = mx.nd.empty(grad.shape, ctx=grad.context, dtype=grad.dtype)
                targets.append(scratch)
                if req == _REQ_ADD:
                    pending_adds.append((grad, scratch))
        # strict=False: one target per input gradient, as many as backward's outputs (checked
        # when the pair was made).
        for position, target in zip(self._op.backward.outputs, targets, strict=False):
            args.insert(position, target)
        self._op.backward(*args)
        for grad, scratch in pending_adds:
            grad += scratch  # noqa: PLW2901 - NDArray's += adds in place, into MXNet's buffer

    def __call__(self, *inputs: NDArray) -> Outputs:
        """Run forward, recorded with the bridged backward when autograd records."""
        # As mx.autograd.Function.__call__ (MXNet 1.9.1), which asserts the same.
        assert not self._used, "Each Function instance can only be called once."  # noqa: S101
        self._used = True
        previous = mx.autograd.set_recording(False)
        try:
            outputs = self.forward(*inputs)
        finally:
            mx.autograd.set_recording(previous)
        if not previous:
            return outputs
        recorded = (outputs,) if isinstance(outputs, NDArray) else outputs
        key = mx.autograd.Function._registry.inc()

        def backward_entry(
            num_ograds: int,
            num_igrads: int,
            ptrs: ctypes._Pointer[ctypes.c_void_p],
            reqs: ctypes._Pointer[ctypes.c_int],
            is_train: int,  # noqa: ARG001 - MXNet's callback signature
            _: object,
        ) -> bool:
            try:
                output_grads = tuple(
                    NDArray(ctypes.cast(p, NDArrayHandle), writable=False)
                    for p in ptrs[:num_ograds]
                )
                input_grads = [
                    NDArray(ctypes.cast(p, NDArrayHandle), writable=True)
                    for p in ptrs[num_ograds : num_ograds + num_igrads]
                ]
                self._backward_into(output_grads, input_grads, [reqs[i] for i in range(num_igrads)])
            except Exception:  # noqa: BLE001 -- MXNet's C++ caller only understands False
                # As mx.autograd.Function does: MXNet's C++ caller drops the exception.
                print(  # noqa: T201
                    f"Error in {self._op.backward.name} (bridged backward): "
                    f"{traceback.format_exc()}"
                )
                return False
            return True

        def delete_entry(_: object) -> bool:
            mx.autograd.Function._registry.ref_holder.pop(key, None)
            return True

        callbacks = [
            mx.autograd.Function._bwd_functype(backward_entry),
            mx.autograd.Function._del_functype(delete_entry),
        ]
        callbacks = [cast(c, CFUNCTYPE(c_int)) for c in callbacks]
        context = MXCallbackList(
            c_int(len(callbacks)),
            cast(c_array(CFUNCTYPE(c_int), callbacks), ctypes.POINTER(CFUNCTYPE(c_int))),
            cast(c_array(c_void_p, [None] * len(callbacks)), ctypes.POINTER(c_void_p)),
        )
        mx.autograd.Function._registry.ref_holder[key] = context
        check_call(
            _LIB.MXCustomFunctionRecord(
                c_int(len(inputs)),
                c_handle_array(inputs),
                c_int(len(recorded)),
                c_handle_array(recorded),
                ctypes.byref(context),
            )
        )
        return outputs


def differentiable(
    forward: KernelSource,
    backward: KernelSource,
    *,
    save_outputs: bool = False,
    name: str | None = None,
) -> DifferentiableFunction:
    """Pair ``forward`` and ``backward`` into one operation ``mx.autograd`` can differentiate.

    Both are un-built TVM PrimFuncs/IRModules or functions ``to_mxnet_func`` made from them.
    See the module docstring for backward's argument convention.
    """
    fwd = _as_inferred(forward, "forward", name)
    bwd = _as_inferred(backward, "backward", f"{name}_backward" if name else None)
    return DifferentiableFunction(fwd, bwd, bool(save_outputs))
