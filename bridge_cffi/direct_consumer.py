"""The direct consumer: call any protocol kernel now, on DLPack arrays, without MXNet's engine.

A second consumer of ``protocol.h`` beside the engine one: the same kernels (whatever
``to_mxnet_func`` accepts, through :func:`bridge_cffi.producers.kernel.make_kernel`) run
synchronously on the calling thread through ``bridge_direct_call`` (csrc/consumers/direct.c), on
anything exporting DLPack: numpy arrays, ``tvm_ffi`` tensors, MXNet NDArrays (exported with
``to_dlpack_for_read`` / ``to_dlpack_for_write``, which wait for pending writes / all pending
operations on the array first). Python only packs the arguments; the checks and the call are
C's.
"""

from __future__ import annotations

import ctypes
import logging
import numbers
from collections.abc import Iterable

from bridge_cffi.errors import BridgeTypeError, BridgeValueError, check, new_error_buffer
from bridge_cffi.foreign_types import KernelSource
from bridge_cffi.native import CData, ffi, lib
from bridge_cffi.producers.kernel import Kernel, make_kernel

logger = logging.getLogger(__name__)

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

# PyCapsule's C API, for consuming DLPack capsules (the capsule names must outlive the
# capsules: PyCapsule_SetName keeps the pointer, so they are module constants).
_capsule_is_valid = ctypes.pythonapi.PyCapsule_IsValid
_capsule_is_valid.argtypes = [ctypes.py_object, ctypes.c_char_p]
_capsule_is_valid.restype = ctypes.c_int
_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
_capsule_pointer.restype = ctypes.c_void_p
_capsule_rename = ctypes.pythonapi.PyCapsule_SetName
_capsule_rename.argtypes = [ctypes.py_object, ctypes.c_char_p]
_capsule_rename.restype = ctypes.c_int
_DLTENSOR, _USED = b"dltensor", b"used_dltensor"
_VERSIONED, _USED_VERSIONED = b"dltensor_versioned", b"used_dltensor_versioned"


class _Taken:
    """DLPack tensors taken from capsules for one call; their deleters run on close()."""

    def __init__(self) -> None:
        self.managed: list[CData] = []  # DLManagedTensor* / DLManagedTensorVersioned*
        self.sources: list[object] = []  # the exporting objects, alive until the deleters ran

    def take(self, source: object, capsule: object, position: int, written: bool) -> CData:
        """The ``DLTensor*`` of ``capsule`` (exported by ``source``), now owned by this call."""
        if _capsule_is_valid(capsule, _DLTENSOR):
            managed = ffi.cast("DLManagedTensor*", _capsule_pointer(capsule, _DLTENSOR))
            _capsule_rename(capsule, _USED)
            self._keep(source, managed)
        elif _capsule_is_valid(capsule, _VERSIONED):
            managed = ffi.cast("DLManagedTensorVersioned*", _capsule_pointer(capsule, _VERSIONED))
            _capsule_rename(capsule, _USED_VERSIONED)
            self._keep(source, managed)
            if managed.version.major != lib.DLPACK_MAJOR_VERSION:
                raise BridgeTypeError(
                    f"argument #{position}: DLPack major version {managed.version.major}, "
                    f"expected {lib.DLPACK_MAJOR_VERSION}"
                )
            if written and managed.flags & lib.DLPACK_FLAG_BITMASK_READ_ONLY:
                raise BridgeValueError(
                    f"argument #{position}: the array is exported read-only but the kernel "
                    "writes it (list its position in const_loc if it only reads it)"
                )
        else:
            raise BridgeTypeError(
                f"argument #{position}: __dlpack__ of {type(source).__name__} returned "
                f"{capsule!r}, not an unused DLPack capsule"
            )
        return ffi.addressof(managed.dl_tensor)

    def _keep(self, source: object, managed: CData) -> None:
        self.managed.append(managed)
        self.sources.append(source)

    def close(self) -> None:
        """Call every taken tensor's deleter (once), then let the sources go."""
        for managed in self.managed:
            if managed.deleter != ffi.NULL:
                managed.deleter(managed)
        self.managed.clear()
        self.sources.clear()


def _export(value: object, position: int, written: bool) -> object:
    """A DLPack capsule for the array ``value``, or raise naming the argument."""
    flags = getattr(value, "flags", None)
    if written and flags is not None and getattr(flags, "writeable", True) is False:
        raise BridgeValueError(
            f"argument #{position}: the {type(value).__name__} is read-only but the kernel "
            "writes it (list its position in const_loc if it only reads it)"
        )
    exporter = getattr(value, "__dlpack__", None)
    if exporter is None:
        # MXNet 1.x NDArrays: these wait for the array (pending writes, or everything pending
        # when it is to be written) before exporting.
        exporter = getattr(value, "to_dlpack_for_write" if written else "to_dlpack_for_read")
    try:
        return exporter()
    except Exception as failure:
        raise BridgeTypeError(
            f"argument #{position}: {type(value).__name__} refused to export DLPack: {failure}"
        ) from failure


def _is_array(value: object) -> bool:
    return hasattr(value, "__dlpack__") or hasattr(value, "to_dlpack_for_read")


class DirectFunction:
    """A protocol kernel called synchronously on DLPack arrays: ``f(*args)`` returns once the
    kernel returned, its writes visible in the arrays passed; a kernel error raises there.
    """

    def __init__(self, kernel: Kernel, const_loc: frozenset[int], name: str) -> None:
        self.kernel = kernel
        self.const_loc = const_loc
        self.name = name
        signature = kernel.signature
        self.arity: int | None = (
            kernel.arity if signature is None else len(signature.parameters)
        )
        self._written: dict[int, CData] = {}

    def __repr__(self) -> str:
        return f"<DirectFunction {self.name} const_loc={sorted(self.const_loc)}>"

    def _written_flags(self, count: int) -> CData:
        flags = self._written.get(count)
        if flags is None:
            flags = ffi.new("uint8_t[]", [i not in self.const_loc for i in range(count)] or 1)
            self._written[count] = flags
        return flags

    def __call__(self, *args: object) -> None:
        """Run the kernel on ``args`` (arrays, int, float, bool) and return when it is done."""
        count = len(args)
        if self.arity is not None and count != self.arity:
            raise BridgeValueError(
                f"{self.name}: takes {self.arity} arguments, got {count}"
            )
        packed = ffi.new("bridge_arg[]", count or 1)
        taken = _Taken()
        try:
            for i, value in enumerate(args):
                slot = packed[i]
                if isinstance(value, bool):
                    slot.kind, slot.value.v_int64 = lib.BRIDGE_ARG_BOOL, int(value)
                elif isinstance(value, numbers.Integral):
                    if not _INT64_MIN <= int(value) <= _INT64_MAX:
                        raise BridgeValueError(f"argument #{i}: {value} does not fit in int64")
                    slot.kind, slot.value.v_int64 = lib.BRIDGE_ARG_INT, int(value)
                elif isinstance(value, numbers.Real):
                    slot.kind, slot.value.v_float64 = lib.BRIDGE_ARG_FLOAT, float(value)
                elif _is_array(value):
                    written = i not in self.const_loc
                    capsule = _export(value, i, written)
                    slot.kind = lib.BRIDGE_ARG_TENSOR
                    slot.value.v_tensor = taken.take(value, capsule, i, written)
                else:
                    raise BridgeTypeError(
                        f"argument #{i}: expected an array exporting DLPack (numpy, tvm_ffi, "
                        f"MXNet NDArray), an int, a float or a bool; got {type(value).__name__}"
                    )
            error = new_error_buffer()
            status = lib.bridge_direct_call(
                self.kernel.pointer, packed, self._written_flags(count), count, error
            )
        finally:
            taken.close()
        # A kernel's failure already names the kernel (C's "<name> failed: ..."); a refused
        # argument is named by position, prefixed with the function.
        check(status, error, "" if status == lib.BRIDGE_E_KERNEL else self.name)


def direct(
    func: KernelSource, const_loc: Iterable[int] | None = None, *, name: str | None = None
) -> DirectFunction:
    """Wrap ``func`` (anything ``to_mxnet_func`` accepts once built: a TVM runtime Module, a
    ``tvm_ffi.Function``, a protocol kernel, an exported library's path, a Python callable) for
    synchronous calls on DLPack arrays through the direct consumer.

    Arguments at ``const_loc`` positions are only read; every other array may be written (a
    read-only array there is refused; one that must be staged is copied back).
    """
    if name is not None and not isinstance(name, str):
        raise BridgeTypeError(f"name: expected a str, got {type(name).__name__}")
    positions = frozenset(const_loc or ())
    if any(isinstance(p, bool) or not isinstance(p, int) or p < 0 for p in positions):
        raise BridgeTypeError(f"const_loc: expected non-negative ints, got {sorted(positions)}")
    kernel = make_kernel(func, name)
    logger.debug("direct consumer for %s, const_loc %s", kernel.name, sorted(positions))
    return DirectFunction(kernel, positions, name or kernel.name)
