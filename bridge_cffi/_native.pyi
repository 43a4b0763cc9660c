"""Types of the compiled extension: ``ffi`` and ``lib`` of csrc/ built by cffi (API mode).

Written from the declarations between BRIDGE_CDEF_BEGIN/END in the C headers (the only
declarations cffi is given, with the two ``extern "Python"`` callbacks of the build script);
tests/test_native_stub.py fails when a name declared there, or exported by the built module,
is missing here, or when this stub names something the module lacks. This is the one module
where C data is untyped: every pointer is a ``CData``; C integers are ``int``, ``void`` is
``None``. ``char*`` parameters also take ``bytes``, as cffi converts them at the call.
"""

from collections.abc import Callable, Iterator
from typing import Any, Final, TypeAlias, TypeVar

from _typeshed import ReadableBuffer, WriteableBuffer

_T = TypeVar("_T")

class _CData:
    """A cffi cdata: a pointer, array or struct of the cdef, whose fields and items are C values.

    types-cffi's own CData has no fields; these are this cdef's, so they are Any here and
    nowhere else (the binding layer converts them to Python values).
    """

    def __getattr__(self, name: str) -> Any: ...
    def __setattr__(self, name: str, value: Any) -> None: ...
    def __getitem__(self, index: int | slice) -> Any: ...
    def __setitem__(self, index: int | slice, value: Any) -> None: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[Any]: ...
    def __int__(self) -> int: ...
    def __bool__(self) -> bool: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...
    def __add__(self, offset: int) -> CData: ...

#: A pointer, array or struct of the cdef (what ``ffi.new`` and ``lib`` functions return).
CData: TypeAlias = _CData

class _FFI:
    """The compiled module's FFI: the run-time half of cffi's FFI (no cdef, no set_source).

    Only char strings are declared in the cdef (no wchar_t), so :meth:`string` gives bytes.
    """

    CData: TypeAlias = _CData
    NULL: Final[CData]
    def new(self, cdecl: str, init: Any = None) -> CData: ...
    def cast(self, cdecl: str, value: CData | int) -> CData: ...
    def string(self, cdata: CData, maxlen: int = -1) -> bytes: ...
    def sizeof(self, cdecl: str | CData) -> int: ...
    def offsetof(self, cdecl: str, *fields_or_indexes: str | int) -> int: ...
    def addressof(self, cdata: CData, *fields_or_indexes: str | int) -> CData: ...
    def gc(self, cdata: CData, destructor: Callable[[CData], object], size: int = 0) -> CData: ...
    def from_buffer(
        self,
        cdecl: str,
        python_buffer: ReadableBuffer | WriteableBuffer,
        require_writable: bool = False,
    ) -> CData: ...
    def memmove(
        self, dest: CData | WriteableBuffer, src: CData | ReadableBuffer, n: int
    ) -> None: ...
    def new_handle(self, x: object) -> CData: ...
    def from_handle(self, x: CData) -> Any: ...
    def def_extern(
        self, name: str = ..., error: Any = ..., onerror: Callable[..., object] | None = ...
    ) -> Callable[[Callable[..., _T]], Callable[..., _T]]: ...

#: The compiled module's FFI (an ``_cffi_backend.FFI`` at run time).
ffi: _FFI

class _Lib:
    """``lib``: the functions, macros and enumerators of the cdef."""

    # Integer macros (#define).
    DLPACK_MAJOR_VERSION: Final[int]
    DLPACK_MINOR_VERSION: Final[int]
    DLPACK_FLAG_BITMASK_READ_ONLY: Final[int]
    DLPACK_FLAG_BITMASK_IS_COPIED: Final[int]
    DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED: Final[int]
    BRIDGE_ABI_MAJOR: Final[int]
    BRIDGE_ABI_MINOR: Final[int]
    BRIDGE_ERROR_CAPACITY: Final[int]
    BRIDGE_ARG_TENSOR: Final[int]
    BRIDGE_ARG_INT: Final[int]
    BRIDGE_ARG_FLOAT: Final[int]
    BRIDGE_ARG_BOOL: Final[int]
    BRIDGE_ARG_OPAQUE: Final[int]
    BRIDGE_ARG_CONSUMER_FIRST: Final[int]
    BRIDGE_KERNEL_ACCEPTS_BYTE_OFFSET: Final[int]
    BRIDGE_OK: Final[int]
    BRIDGE_E_TYPE: Final[int]
    BRIDGE_E_VALUE: Final[int]
    BRIDGE_E_MXNET: Final[int]
    BRIDGE_E_SYMBOL: Final[int]
    BRIDGE_E_KERNEL: Final[int]
    BRIDGE_E_STATE: Final[int]
    BRIDGE_E_MEMORY: Final[int]
    BRIDGE_E_RECORDED: Final[int]
    BRIDGE_E_GPU_UNTESTED: Final[int]
    BRIDGE_MAX_CALL_ARGS: Final[int]
    BRIDGE_ERRORS_ENGINE_EXCEPTION: Final[int]
    BRIDGE_ERRORS_RECORDED: Final[int]
    BRIDGE_MAX_GPUS: Final[int]
    BRIDGE_GPU_UNTESTED: Final[int]
    BRIDGE_GPU_CONFIRMED: Final[int]
    BRIDGE_GPU_REFUSED: Final[int]
    BRIDGE_LEGACY_FROM_FUNCTION: Final[int]
    BRIDGE_LEGACY_FROM_MODULE: Final[int]
    BRIDGE_LEGACY_FROM_FILE: Final[int]
    BRIDGE_ARG_MXNET_NDARRAY: Final[int]
    BRIDGE_SPEC_MAX_DIMS: Final[int]
    BRIDGE_SPEC_UNCHECKED: Final[int]
    BRIDGE_OP_MAX_DIMS: Final[int]
    BRIDGE_OP_ROUTE_CUSTOM_OP: Final[int]
    BRIDGE_OP_ROUTE_EXTENSION_LIBRARY: Final[int]
    BRIDGE_DIRECT_ALIGNMENT: Final[int]

    # DLPack's enumerators (DLDeviceType, DLDataTypeCode).
    kDLCPU: Final[int]
    kDLCUDA: Final[int]
    kDLCUDAHost: Final[int]
    kDLOpenCL: Final[int]
    kDLVulkan: Final[int]
    kDLMetal: Final[int]
    kDLVPI: Final[int]
    kDLROCM: Final[int]
    kDLROCMHost: Final[int]
    kDLExtDev: Final[int]
    kDLCUDAManaged: Final[int]
    kDLOneAPI: Final[int]
    kDLWebGPU: Final[int]
    kDLHexagon: Final[int]
    kDLMAIA: Final[int]
    kDLInt: Final[int]
    kDLUInt: Final[int]
    kDLFloat: Final[int]
    kDLOpaqueHandle: Final[int]
    kDLBfloat: Final[int]
    kDLComplex: Final[int]
    kDLBool: Final[int]
    kDLFloat8_e3m4: Final[int]
    kDLFloat8_e4m3: Final[int]
    kDLFloat8_e4m3b11fnuz: Final[int]
    kDLFloat8_e4m3fn: Final[int]
    kDLFloat8_e4m3fnuz: Final[int]
    kDLFloat8_e5m2: Final[int]
    kDLFloat8_e5m2fnuz: Final[int]
    kDLFloat8_e8m0fnu: Final[int]
    kDLFloat6_e2m3fn: Final[int]
    kDLFloat6_e3m2fn: Final[int]
    kDLFloat4_e2m1fn: Final[int]

    # Functions.
    def bridge_mxnet_bind(self, library_path: bytes | CData, error: bytes | CData) -> int: ...
    def bridge_tvmffi_bind(self, library_path: bytes | CData, error: bytes | CData) -> int: ...
    def bridge_symbols_bound(self) -> int: ...
    def bridge_symbol_count(self) -> int: ...
    def bridge_symbol_name(self, index: int) -> CData: ...
    def bridge_mxnet_version(self, out_version: CData, error: bytes | CData) -> int: ...
    def bridge_error_mode(self) -> int: ...
    def bridge_use_recorded_errors(self) -> None: ...
    def bridge_take_recorded_error(self, error: bytes | CData) -> int: ...
    def bridge_confirm_chunk_identity(self, confirmed: int) -> None: ...
    def bridge_confirm_run_context_layout(self, confirmed: int) -> None: ...
    def bridge_set_data_alignment(self, alignment: int) -> None: ...
    def bridge_data_alignment(self) -> int: ...
    def bridge_mxnet_chunk_word(self, ndarray_handle: CData) -> CData: ...
    def bridge_probe_run_context(
        self,
        ndarray_handle: CData,
        dev_type: int,
        dev_id: int,
        seen: CData,
        error: bytes | CData,
    ) -> int: ...
    def bridge_cuda_bind(self, library_path: bytes | CData, error: bytes | CData) -> int: ...
    def bridge_confirm_gpu(self, device_id: int, confirmed: int, reason: bytes | CData) -> None: ...
    def bridge_untested_gpu(self) -> int: ...
    def bridge_probe_gpu_stream(
        self,
        ndarray_handle: CData,
        dev_id: int,
        seen: CData,
        error: bytes | CData,
    ) -> int: ...
    def bridge_probe_engine_error(self, ndarray_handle: CData, error: bytes | CData) -> int: ...
    def bridge_kernel_check(self, kernel: CData, error: bytes | CData) -> int: ...
    def bridge_kernel_accepts_byte_offset(self, kernel: CData) -> int: ...
    def bridge_tvmffi_kernel_new(
        self,
        function_handle: CData,
        name: bytes | CData,
        num_args: int,
        flags: int,
        out: CData,
        error: bytes | CData,
    ) -> int: ...
    def bridge_tvm_legacy_bind(self, library_path: bytes | CData, error: bytes | CData) -> int: ...
    def bridge_tvm_legacy_kernel_new(
        self,
        source: CData | bytes,  # a handle, or a file's path (cffi passes bytes as void*)
        source_kind: int,
        function_name: bytes | CData,
        name: bytes | CData,
        verbose_errors: int,
        out: CData,
        error: bytes | CData,
    ) -> int: ...
    def bridge_kernel_retain(self, kernel: CData) -> None: ...
    def bridge_kernel_release(self, kernel: CData) -> None: ...
    def bridge_mxnet_push(
        self,
        kernel: CData,
        args: CData,
        written: CData,
        num_args: int,
        priority: int,
        name: bytes | CData,
        error: bytes | CData,
    ) -> int: ...
    def bridge_call_plan_new(
        self,
        kernel: CData,
        const_flags: bytes | CData,
        num_const_flags: int,
        priority: int,
        name: bytes | CData,
        out: CData,
        error: bytes | CData,
    ) -> int: ...
    def bridge_call_plan_free(self, plan: CData) -> None: ...
    def bridge_call_plan_set_signature(
        self,
        plan: CData,
        specs: CData,
        num_specs: int,
        function: bytes | CData,
        error: bytes | CData,
    ) -> int: ...
    def bridge_call(self, plan: CData, packed: bytes | CData, packed_size: int) -> int: ...
    def bridge_last_error(self) -> CData: ...
    def bridge_read_counters(self, out: CData) -> None: ...
    def bridge_op_register(self, spec: CData, route: int, error: bytes | CData) -> int: ...
    def bridge_extension_library_version(self) -> int: ...
    def bridge_direct_call(
        self,
        kernel: CData,
        args: CData,
        written: CData,
        num_args: int,
        error: bytes | CData,
    ) -> int: ...

    # Python functions C calls back at graph-build time (``extern "Python"`` in the build
    # script, implemented with ``ffi.def_extern``): here, their C function pointers.
    bridge_py_infer_shape: CData
    bridge_py_infer_type: CData

lib: _Lib
