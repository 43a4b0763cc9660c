/*
 * Declarations shared by the extension's C files: the symbol tables resolved at run time from
 * the libraries the process already loaded, and small helpers. Nothing here is public.
 */
#ifndef BRIDGE_CFFI_INTERNAL_H_
#define BRIDGE_CFFI_INTERNAL_H_

#include <stdatomic.h>
#include <stdbool.h>

#include "runtime/bridge_runtime.h"

/* ---- MXNet's C API, as declared in MXNet's include/mxnet/c_api.h (1.5.1 and later). ---- */
typedef void (*mx_engine_sync_fn)(void* run_ctx, void* param);
typedef void (*mx_engine_param_deleter)(void* param);

typedef struct {
  int (*MXGetVersion)(int* out);
  const char* (*MXGetLastError)(void);
  int (*MXEnginePushSyncND)(mx_engine_sync_fn fn, void* param, mx_engine_param_deleter deleter,
                            const void* ctx, void** const_nds, int num_const, void** mutable_nds,
                            int num_mutable, const void* prop, int priority, const char* name);
  int (*MXNDArrayToDLPack)(void* handle, DLManagedTensor** out);
  int (*MXNDArrayDetach)(void* handle, void** out);
  int (*MXNDArrayFree)(void* handle);
  int (*MXNDArrayGetStorageType)(void* handle, int* out);
  int (*MXNDArrayGetDType)(void* handle, int* out);
  int (*MXNDArrayGetContext)(void* handle, int* dev_type, int* dev_id);
  /* optional: NULL when absent (then calls are not checked against a kernel's signature) */
  int (*MXNDArrayGetShape)(void* handle, uint32_t* out_dim, const uint32_t** out_pdata);
  /* optional: NULL when absent (then errors of operations writing no array are recorded) */
  int (*MXNDArrayCreateEx)(const uint32_t* shape, uint32_t ndim, int dev_type, int dev_id,
                           int delay_alloc, int dtype, void** out);
  /* optional: NULL when absent (then bridge_op_register refuses) */
  int (*MXCustomOpRegister)(const char* op_type, void* creator);
  /* libstdc++'s std::__throw_runtime_error, as MXNet's own dependency tree resolves it. */
  void (*throw_runtime_error)(const char* message);
} mx_symbols;

/* MXNet Context device types. */
enum { MX_DEV_CPU = 1, MX_DEV_GPU = 2, MX_DEV_CPU_PINNED = 3, MX_DEV_CPU_SHARED = 5 };

extern mx_symbols g_mx;
extern atomic_bool g_mx_bound;
extern atomic_int g_error_mode;

/* ---- tvm-ffi's stable C ABI (tvm_ffi/include/tvm/ffi/c_api.h), declared here ourselves. ---- */
enum {
  TVMFFI_NONE = 0,
  TVMFFI_INT = 1,
  TVMFFI_BOOL = 2,
  TVMFFI_FLOAT = 3,
  TVMFFI_OPAQUE_PTR = 4,
  TVMFFI_DLTENSOR_PTR = 7,
  TVMFFI_STATIC_OBJECT_BEGIN = 64
};

typedef struct {
  int32_t type_index;
  uint32_t zero_padding;
  union {
    int64_t v_int64;
    double v_float64;
    void* v_ptr;
  } value;
} tvmffi_any;

typedef struct {
  const char* data;
  size_t size;
} tvmffi_byte_array;

/* Object header, then the error cell follows it in an Error object. */
typedef struct {
  uint64_t combined_ref_count;
  int32_t type_index;
  uint32_t padding;
  void* deleter;
} tvmffi_object_header;

typedef struct {
  tvmffi_byte_array kind;
  tvmffi_byte_array message;
  tvmffi_byte_array backtrace;
} tvmffi_error_cell_prefix;

typedef struct {
  int (*TVMFFIFunctionCall)(void* func, tvmffi_any* args, int32_t num_args, tvmffi_any* result);
  void (*TVMFFIErrorMoveFromRaised)(void** result);
  int (*TVMFFIObjectIncRef)(void* obj);
  int (*TVMFFIObjectDecRef)(void* obj);
  int (*TVMFFIEnvSetStream)(int32_t device_type, int32_t device_id, void* stream,
                            void** previous); /* optional: NULL when absent */
} tvmffi_symbols;

extern tvmffi_symbols g_tvmffi;
extern atomic_bool g_tvmffi_bound;

/* ---- The PackedFunc generation's C API (TVM < 0.20: include/tvm/runtime/c_runtime_api.h),
 * declared here ourselves; stable from TVM 0.6 to 0.19. ---- */
enum {
  TVM_LEGACY_INT = 0,            /* kDLInt: ints and bools */
  TVM_LEGACY_FLOAT = 2,          /* kDLFloat */
  TVM_LEGACY_OPAQUE = 3,         /* kTVMOpaqueHandle */
  TVM_LEGACY_NULL = 4,           /* kTVMNullptr */
  TVM_LEGACY_DLTENSOR = 7,       /* kTVMDLTensorHandle */
  TVM_LEGACY_OBJECT = 8,         /* kTVMObjectHandle */
  TVM_LEGACY_MODULE = 9,         /* kTVMModuleHandle */
  TVM_LEGACY_PACKED_FUNC = 10,   /* kTVMPackedFuncHandle */
  TVM_LEGACY_NDARRAY = 13        /* kTVMNDArrayHandle */
};

typedef union {
  int64_t v_int64;
  double v_float64;
  void* v_handle;
  const char* v_str;
} tvm_legacy_value;

typedef struct {
  int (*TVMFuncCall)(void* func, tvm_legacy_value* values, int* type_codes, int num_args,
                     tvm_legacy_value* ret_value, int* ret_type_code);
  const char* (*TVMGetLastError)(void);
  int (*TVMFuncFree)(void* func);
  int (*TVMObjectRetain)(void* object);
  int (*TVMObjectFree)(void* object);
  int (*TVMModLoadFromFile)(const char* file_name, const char* format, void** out);
  int (*TVMModGetFunction)(void* module, const char* name, int query_imports, void** out);
  int (*TVMModFree)(void* module);
  int (*TVMArrayFree)(void* array);                        /* optional */
  int (*TVMSetStream)(int device_type, int device_id, void* stream); /* optional */
} tvm_legacy_symbols;

extern tvm_legacy_symbols g_tvm_legacy;
extern atomic_bool g_tvm_legacy_bound;

/* ---- The CUDA driver API (cuda.h), declared here ourselves: CUresult is an int, CUstream
 * and CUcontext are pointers. Resolved from the libcuda.so.1 MXNet's CUDA build loaded. ---- */
enum { CUDA_SUCCESS_RESULT = 0, CUDA_NOT_READY_RESULT = 600 };

typedef struct {
  int (*cuStreamSynchronize)(void* stream);
  int (*cuStreamQuery)(void* stream);
  int (*cuGetErrorName)(int result, const char** name);     /* optional */
  int (*cuGetErrorString)(int result, const char** text);   /* optional */
  int (*cuStreamGetCtx)(void* stream, void** context);      /* optional */
  int (*cuCtxGetCurrent)(void** context);                   /* optional */
  /* optional, all three or none (CUDA 11.2+ drivers): staging of misaligned GPU views */
  int (*cuMemAllocAsync)(uint64_t* pointer, size_t bytes, void* stream);
  int (*cuMemFreeAsync)(uint64_t pointer, void* stream);
  int (*cuMemcpyDtoDAsync_v2)(uint64_t destination, uint64_t source, size_t bytes, void* stream);
} cuda_symbols;

extern cuda_symbols g_cuda;
extern atomic_bool g_cuda_bound;

/* "CUDA_ERROR_ILLEGAL_ADDRESS (CUresult 700: an illegal memory access was encountered)". */
void bridge_cuda_describe(int32_t result, char* out, size_t capacity);
/* BRIDGE_GPU_* for `device_id`; *reason (when not NULL) says why a refused GPU is refused. */
int32_t bridge_gpu_state(int32_t device_id, const char** reason);
/* Remember, for this thread, the GPU whose self-test a refused call is waiting for. */
void bridge_note_untested_gpu(int32_t device_id);

/* ---- counters (counters.c) ---- */
extern atomic_llong g_ops_pushed, g_ops_run, g_ops_freed, g_dlpack_taken, g_dlpack_deleted,
    g_kernels_alive, g_views_staged;

/* ---- helpers ---- */
/* Format a message into a BRIDGE_ERROR_CAPACITY buffer; returns `code` for tail calls. */
int32_t bridge_fail(char* error, int32_t code, const char* format, ...)
    __attribute__((format(printf, 3, 4)));

/* An MXNet dtype flag's name ("float32", ...), or NULL for a dtype DLPack cannot express. */
const char* mx_dtype_name(int dtype);

/* What bridge_mxnet_push_checked checks a call against (a plan's signature). */
typedef struct {
  const bridge_param_spec* specs;
  int32_t num_specs;
  const char* function;
} bridge_signature;

/* Check `args` against `signature`; `dtypes[i]` is argument i's MXNet dtype when it is an
 * array (read by the consumer's own validation). */
int32_t bridge_signature_check(const bridge_signature* signature, const bridge_arg* args,
                               const int* dtypes, int32_t num_args, char* error);

/* BRIDGE_OK when one call may take `num_args` arguments (0 to BRIDGE_MAX_CALL_ARGS), else
 * BRIDGE_E_VALUE with the message; checked by each entry that takes a count from its caller
 * (consumers/mxnet/push.c owns the limit). */
int32_t bridge_check_arg_count(int64_t num_args, char* error);

/* Run `kernel` now on this thread, for a caller that holds the arrays' dependencies (see
 * consumers/mxnet/run.c); CPU arrays only; nothing is pushed or thrown. */
int32_t bridge_mxnet_run_now(bridge_kernel* kernel, const bridge_arg* args,
                             const uint8_t* written, int32_t num_args, const char* name,
                             char* error);
/* Invoke `kernel` now on DLTensors built from MXNet's arrays (aligned and staged as for pushed
 * calls; the tensors are modified in place). */
int32_t bridge_invoke_tensors(bridge_kernel* kernel, bridge_arg* args, const uint8_t* written,
                              int32_t num_args, DLDevice device, void* stream, const char* name,
                              char* error);
/* bridge_mxnet_push for a count already checked (bridge_check_arg_count), checking the call
 * against `signature` (when not NULL) after the consumer's own validation and before the
 * push. */
int32_t bridge_mxnet_push_checked(bridge_kernel* kernel, const bridge_arg* args,
                                  const uint8_t* written, int32_t num_args, int32_t priority,
                                  const char* name, const bridge_signature* signature,
                                  char* error);

/* A malloc'ed copy of `text`, or NULL when out of memory. */
char* bridge_copy_string(const char* text);
/* The kernel's name, or the bridge's default when the kernel left it NULL (protocol.h allows). */
const char* bridge_kernel_shown_name(const bridge_kernel* kernel);

/* True when an engine error was recorded and not yet taken (cheap: one atomic load). */
bool bridge_recorded_error_pending(void);

/* Report a kernel failure from an engine thread. In engine-exception mode this throws into
 * MXNet's engine and does not return: the caller must own nothing at this point. */
void bridge_raise_in_engine(const char* message);

/* Record a kernel failure for the next bridged call or synchronize(), whatever the error
 * mode: for operations whose exception MXNet could not deliver (they write no array). */
void bridge_record_engine_error(const char* message);

#endif /* BRIDGE_CFFI_INTERNAL_H_ */
