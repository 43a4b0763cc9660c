"""Producers: turn what the user hands to ``to_mxnet_func`` into a protocol kernel.

Every producer ends as a ``bridge_kernel*`` (csrc/include/bridge_cffi/protocol.h) with one
reference owned by a :class:`Kernel`; the engine consumer only ever sees that struct.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bridge_cffi.errors import BridgeLibraryError, BridgeTypeError, check, new_error_buffer
from bridge_cffi.foreign_types import KernelSource, TvmFunction, TvmModule
from bridge_cffi.native import CData, ffi, lib
from bridge_cffi.native_object import NativeObject
from bridge_cffi.producers.binding import bind_tvmffi
from bridge_cffi.producers.generations import (
    ELFError,
    exported_library_generation,
    mapped_packed_func_runtime,
    packed_func_kind,
    packed_func_runtime_of,
)
from bridge_cffi.producers.signature import Signature, of_library, of_module
from bridge_cffi.stack import require


@dataclass(eq=False)
class Kernel(NativeObject):
    """One owned reference to a protocol kernel, released when this object is collected."""

    pointer: Any  # cffi ``bridge_kernel*`` wrapped by ffi.gc
    name: str
    num_args: int  # -1 when the producer cannot tell in advance
    keepalive: tuple[Any, ...] = field(default=())  # Python objects backing the kernel
    #: what the compiled function says about its parameters (tvm_signature), when known
    signature: Signature | None = None

    @property
    def arity(self) -> int | None:
        """Number of arguments, or None when unknown."""
        return None if self.num_args < 0 else self.num_args

    def _pickle_advice(self) -> str:
        return (
            f"the kernel {self.name!r}: it is a native object of this process; pickle what it "
            "was made from (an exported library path) instead"
        )

    @property
    def accepts_byte_offset(self) -> bool:
        """Whether the kernel reads views at data + byte_offset; if not, the engine consumer
        hands it misaligned views through an aligned copy (staging).
        """
        return bool(lib.bridge_kernel_accepts_byte_offset(self.pointer))


def _owned(pointer: CData) -> CData:
    return ffi.gc(pointer, lib.bridge_kernel_release)


#: Kernel flag: reads views at data + byte_offset (protocol.h, ABI 1.1).
ACCEPTS_BYTE_OFFSET = lib.BRIDGE_KERNEL_ACCEPTS_BYTE_OFFSET


def from_tvmffi_function(
    function: TvmFunction,
    name: str | None,
    keepalive: tuple[object, ...] = (),
    accepts_byte_offset: bool = True,
) -> Kernel:
    """Adapt a ``tvm_ffi.Function`` (anything speaking tvm-ffi's C ABI).

    ``accepts_byte_offset``: a tvm-ffi function of the user's own reads ``byte_offset``; one
    TVM compiled from default buffers does not (its views are then staged).
    """
    bind_tvmffi()
    shown = name or "tvm_ffi_function"
    out = ffi.new("bridge_kernel**")
    error = new_error_buffer()
    flags = ACCEPTS_BYTE_OFFSET if accepts_byte_offset else 0
    check(
        lib.bridge_tvmffi_kernel_new(
            ffi.cast("void*", function.__chandle__()), shown.encode(), -1, flags, out, error
        ),
        error,
        "func",
    )
    return Kernel(_owned(out[0]), shown, -1, (*keepalive, function))


def from_tvm_module(
    module: TvmModule,
    name: str | None,
    built_by_tvm: bool | None = None,
    signature_from: Callable[[TvmModule, str], Signature | None] | None = None,
) -> Kernel:
    """Adapt a TVM runtime Module through its entry function.

    ``built_by_tvm``: compiled by TVM (tvm.build, export_library), whose default buffers need
    byte_offset 0 and whose entry embeds its signature (read by ``signature_from``, by default
    from the module's LLVM IR); by default, a module of TVM's own class is, a plain ``tvm_ffi``
    module (``load_inline``, the user's own C++) is not.
    """
    entry = getattr(module, "entry_name", "main")
    # get_function, not implements_function: a module built from one PrimFunc named otherwise
    # (a TVMScript `vadd`) answers its entry name too, and TVM itself runs it as mod(...).
    try:
        function = module.get_function(entry, True)
    except AttributeError:
        raise BridgeTypeError(
            f"func: the TVM module has no entry function {entry!r}; pass the function itself, "
            f"e.g. to_mxnet_func(mod['my_func'])"
        ) from None
    if built_by_tvm is None:
        built_by_tvm = not type(module).__module__.startswith("tvm_ffi")
    signature = (signature_from or of_module)(module, entry) if built_by_tvm else None
    # The function's own name when the module answers an alias (a TVMScript `vadd` as main).
    shown = name or (signature.function if signature else entry)
    kernel = from_tvmffi_function(
        function, shown, keepalive=(module,), accepts_byte_offset=not built_by_tvm
    )
    return Kernel(kernel.pointer, kernel.name, kernel.num_args, kernel.keepalive, signature)


def from_c_pointer(pointer: CData, name: str | None, keepalive: tuple[object, ...] = ()) -> Kernel:
    """Adapt a ``bridge_kernel*`` whose one reference is handed over to the bridge."""
    kernel = ffi.cast("bridge_kernel*", pointer)
    error = new_error_buffer()
    check(lib.bridge_kernel_check(kernel, error), error, "func")
    c_name = ffi.string(kernel.name).decode() if kernel.name != ffi.NULL else "c_kernel"
    return Kernel(_owned(kernel), name or c_name, int(kernel.num_args), keepalive)


def load_c_kernel(path: str | os.PathLike[str], symbol: str = "bridge_kernel_create") -> Kernel:
    """Load a C kernel from a shared library exporting ``bridge_kernel* symbol(void)``.

    The function must return a new kernel with one reference, which the bridge takes over.
    The library stays loaded until the process exits (pending operations may outlive the kernel
    object, and the kernel's code lives in the library).
    """
    from cffi import FFI

    # cffi only calls functions it was told about: declare the factory on a private FFI, as
    # an opaque pointer so its bridge_kernel type need not match ours until it is checked.
    private = FFI()
    private.cdef(f"void* {symbol}(void);")
    try:
        # RTLD_NODELETE: pending operations hold C references to the kernel, whose code lives
        # in this library; cffi dlcloses it when `library` is collected, which would unmap
        # that code under an engine thread still due to call it. Never unload it.
        # types-cffi 2.1 lacks FFI.RTLD_* (cffi's FFI has them).
        library = private.dlopen(
            os.fspath(path),
            private.RTLD_NOW | private.RTLD_NODELETE,  # type: ignore[attr-defined]
        )
    except OSError as failure:
        raise BridgeTypeError(f"func: cannot load {path}: {failure}") from failure
    try:
        factory = getattr(library, symbol)
    except AttributeError as missing:
        raise BridgeTypeError(f"func: {path} exports no function {symbol!r}") from missing
    pointer = factory()
    if pointer == private.NULL:
        raise BridgeTypeError(f"func: {symbol}() in {path} returned NULL instead of a kernel")
    address = int(private.cast("uintptr_t", pointer))
    return from_c_pointer(ffi.cast("bridge_kernel*", address), None, keepalive=(library, private))


def from_packed_func_generation(
    func: TvmFunction | TvmModule, kind: str, name: str | None
) -> Kernel:
    """Adapt a PackedFunc or runtime Module of the PackedFunc generation (TVM < 0.20)."""
    from bridge_cffi.producers import tvm_legacy as legacy

    runtime = packed_func_runtime_of(func)
    assert runtime is not None  # noqa: S101 - for mypy: packed_func_kind found it
    adapt = legacy.from_packed_func if kind == "function" else legacy.from_packed_func_module
    pointer, shown, keepalive = adapt(func, name, runtime)
    return Kernel(_owned(pointer), shown, int(pointer.num_args), (keepalive,))


def from_exported_library(path: str | os.PathLike[str], name: str | None) -> Kernel:
    """Adapt the shared library at ``path``: a TVM ``export_library`` file of either
    generation or a protocol kernel library, told apart by what it exports.
    """
    if not os.path.isfile(path):
        raise BridgeTypeError(
            f"func: got {os.fspath(path)!r}, taken as the path of an exported library, but no "
            "such file exists; expected a TVM runtime Module, a tvm_ffi.Function, a PackedFunc, "
            "a protocol kernel or the path of an existing library"
        )
    try:
        generation = exported_library_generation(path)
    except (OSError, ELFError) as failure:
        raise BridgeTypeError(f"func: cannot read the library {os.fspath(path)}: {failure}") from (
            failure
        )
    if generation == "bridge-protocol":
        kernel = load_c_kernel(path)
        return kernel if name is None else make_kernel(kernel, name)
    if generation == "packed-func":
        from bridge_cffi.producers.tvm_legacy import from_packed_func_library

        pointer, shown, _ = from_packed_func_library(path, name)
        return Kernel(_owned(pointer), shown, int(pointer.num_args))
    if generation == "tvm-ffi":
        legacy = mapped_packed_func_runtime()
        if legacy is not None:
            raise BridgeLibraryError(
                f"func: {os.fspath(path)} is a TVM module of the tvm-ffi generation (TVM >= 0.20), "
                f"but this process uses a TVM of the PackedFunc generation ({legacy}); their "
                "runtimes abort when loaded together: bridge it in a process without that TVM"
            )
        tvm_ffi = require("tvm_ffi", f"the tvm-ffi module {os.fspath(path)}")
        return from_tvm_module(
            tvm_ffi.load_module(os.fspath(path)),
            name,
            built_by_tvm=True,
            signature_from=lambda _, entry: of_library(os.fspath(path), entry),
        )
    raise BridgeTypeError(
        f"func: {os.fspath(path)} is neither a TVM export_library file (no __tvm_ffi_* or "
        f"__tvm_main__ symbol) nor a protocol kernel library (no bridge_kernel_create)"
    )


def make_kernel(func: KernelSource, name: str | None) -> Kernel:
    """Dispatch on what ``func`` is and return its kernel."""
    if isinstance(func, Kernel):
        if name is None:
            return func
        return Kernel(_retained(func), name, func.num_args, func.keepalive, func.signature)
    if isinstance(func, ffi.CData):
        return from_c_pointer(func, name)
    if isinstance(func, (str, os.PathLike)):
        return from_exported_library(func, name)
    packed = packed_func_kind(func)
    if packed is not None:
        return from_packed_func_generation(func, packed, name)
    type_name = f"{type(func).__module__}.{type(func).__qualname__}"
    if hasattr(func, "implements_function") and hasattr(func, "entry_name"):
        return from_tvm_module(func, name)
    if hasattr(func, "__chandle__") and type_name.startswith("tvm_ffi."):
        return from_tvmffi_function(func, name)
    if type_name.startswith("tvm.") and type(func).__name__ in {"PrimFunc", "IRModule"}:
        raise BridgeTypeError(
            "func: got an un-built TVM " + type(func).__name__ + "; build it first, e.g. "
            "to_mxnet_func(tvm.build(prim_func, target='llvm'))"
        )
    if type_name == "tvm.te.tensor.Tensor":
        raise BridgeTypeError(
            "func: got a te.Tensor (one stage of a computation), not a function; make a function "
            "of its inputs and outputs first, e.g. to_mxnet_func(te.create_prim_func([x, y, z]))"
        )
    if callable(func):
        # A Python function runs as a tvm-ffi function on MXNet's engine thread (taking the
        # GIL itself), named after itself in the profiler.
        from bridge_cffi.producers.engine_guard import guarded

        tvm_ffi = require("tvm_ffi", "a Python callable as a kernel")
        shown = name or getattr(func, "__qualname__", None) or type(func).__name__
        converted = tvm_ffi.convert(guarded(func, shown))
        return from_tvmffi_function(converted, shown, keepalive=(func,))
    raise BridgeTypeError(
        f"func: expected a TVM runtime Module, a tvm_ffi.Function, a PackedFunc, a protocol "
        f"kernel or the path of an exported library, got {type_name}"
    )


def _retained(kernel: Kernel) -> CData:
    lib.bridge_kernel_retain(kernel.pointer)
    return _owned(ffi.cast("bridge_kernel*", kernel.pointer))
