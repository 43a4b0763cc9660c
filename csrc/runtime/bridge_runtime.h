/*
 * The extension's own API, called by the Python package through cffi. Not part of the
 * protocol: producers and consumers written elsewhere only need bridge_cffi/protocol.h.
 *
 * Every function that can fail returns a BRIDGE_E_* code and writes a NUL-terminated message
 * of at most BRIDGE_ERROR_CAPACITY bytes into `error`; 0 means success.
 *
 * The section between the CDEF markers is fed verbatim to cffi's cdef.
 */
#ifndef BRIDGE_CFFI_RUNTIME_H_
#define BRIDGE_CFFI_RUNTIME_H_

#include "bridge_cffi/protocol.h"

/* BRIDGE_CDEF_BEGIN runtime */
#define BRIDGE_OK 0
#define BRIDGE_E_TYPE 1      /* an argument has the wrong type (Python TypeError) */
#define BRIDGE_E_VALUE 2     /* an argument has a wrong value (Python ValueError) */
#define BRIDGE_E_MXNET 3     /* an MXNet C API call failed; the message is MXNet's */
#define BRIDGE_E_SYMBOL 4    /* a library or a symbol could not be found */
#define BRIDGE_E_KERNEL 5    /* a kernel failed or was refused */
#define BRIDGE_E_STATE 6     /* the bridge is not initialised for this call */
#define BRIDGE_E_MEMORY 7    /* out of memory */
#define BRIDGE_E_RECORDED 8  /* an earlier operation failed on the engine (recorded mode) */
#define BRIDGE_E_GPU_UNTESTED 9 /* GPU arrays, and this GPU's stream self-test has not run */

/* Most arguments one call may take. */
#define BRIDGE_MAX_CALL_ARGS 1024

/* How an error raised by a kernel on an engine thread reaches Python. */
#define BRIDGE_ERRORS_ENGINE_EXCEPTION 1 /* thrown into MXNet's engine, raised at the next wait */
#define BRIDGE_ERRORS_RECORDED 2         /* recorded, raised by the next bridged call */

/* Resolve MXNet's C symbols from the copy already loaded at `library_path` (never loads a
 * second copy). Also resolves the libstdc++ thrower MXNet uses, which picks the error mode. */
int32_t bridge_mxnet_bind(const char* library_path, char* error);
/* Resolve tvm-ffi's C symbols from the copy already loaded at `library_path`. */
int32_t bridge_tvmffi_bind(const char* library_path, char* error);
/* Capability flags: bit i is set when entry i of csrc/runtime/symbols.def (REQUIRED or
 * OPTIONAL) was found by a bind that succeeded; an optional symbol's bit is what a feature
 * needing it checks.
 * bridge_symbol_name(i) is entry i's name (NULL past the last of bridge_symbol_count()). */
uint64_t bridge_symbols_bound(void);
int32_t bridge_symbol_count(void);
const char* bridge_symbol_name(int32_t index);
/* MXNet's version as MXGetVersion reports it (major*10000 + minor*100 + patch). */
int32_t bridge_mxnet_version(int32_t* out_version, char* error);

/* The active error mode (BRIDGE_ERRORS_*), or 0 before bridge_mxnet_bind succeeded. */
int32_t bridge_error_mode(void);
/* Switch to BRIDGE_ERRORS_RECORDED (used when the probe distrusts the thrower, and by tests). */
void bridge_use_recorded_errors(void);
/* Move the oldest recorded engine error into `error`; returns 1 if there was one, else 0. */
int32_t bridge_take_recorded_error(char* error);

/* Layout facts confirmed by self-tests; the engine consumer relies on each only once set. */
void bridge_confirm_chunk_identity(int32_t confirmed);
void bridge_confirm_run_context_layout(int32_t confirmed);
/* Kernels get DLTensor data aligned to this many bytes (a power of two), the rest of a view's
 * offset in byte_offset. Set from the alignment MXNet gives its own allocations. */
void bridge_set_data_alignment(uint32_t alignment);
uint32_t bridge_data_alignment(void);
/* The first pointer-sized word of an NDArrayHandle: its storage chunk (DESIGN §3). */
void* bridge_mxnet_chunk_word(void* ndarray_handle);

/* What the run-context probe saw on the engine thread. */
typedef struct {
  int32_t ran;
  int32_t dev_type;
  int32_t dev_id;
  int32_t stream_is_null;
} bridge_run_context_seen;
/* Push an operation writing `ndarray_handle` whose callback records the run context it got.
 * `seen` must stay valid until the array is waited for. */
int32_t bridge_probe_run_context(void* ndarray_handle, int32_t dev_type, int32_t dev_id,
                                 bridge_run_context_seen* seen, char* error);

/* Resolve the CUDA driver functions the GPU path needs (cuStreamSynchronize, cuStreamQuery,
 * ...) from the libcuda already loaded at `library_path` (never loads one). */
int32_t bridge_cuda_bind(const char* library_path, char* error);
/* GPU arrays of one device are pushed only once its stream self-test confirmed the layout. */
#define BRIDGE_MAX_GPUS 64
#define BRIDGE_GPU_UNTESTED 0
#define BRIDGE_GPU_CONFIRMED 1
#define BRIDGE_GPU_REFUSED 2
/* Record the self-test's outcome for `device_id`; `reason` (copied) says why when refused. */
void bridge_confirm_gpu(int32_t device_id, int32_t confirmed, const char* reason);
/* The device of this thread's last call refused with BRIDGE_E_GPU_UNTESTED, else -1. */
int32_t bridge_untested_gpu(void);

/* What the GPU stream probe saw on the engine thread (all fields written there). */
typedef struct {
  int32_t ran;
  int32_t dev_type;
  int32_t dev_id;
  int32_t stream_object_is_null; /* RunContext.stream (the mshadow::Stream<gpu>*) was NULL */
  uint64_t stream;               /* the cudaStream_t read from the mshadow::Stream<gpu> */
  int32_t query_result;          /* cuStreamQuery(stream): 0 done, 600 not ready, else bad */
  int32_t context_matches;       /* the stream's CUcontext is the thread's current: 1, 0, or -1
                                    when the driver cannot tell */
} bridge_gpu_stream_seen;
/* Push an operation on gpu(`dev_id`) writing `ndarray_handle` whose callback records the
 * stream it got and what the driver says about it. Needs the CPU run-context layout confirmed
 * and bridge_cuda_bind done. `seen` must stay valid until the array is waited for. */
int32_t bridge_probe_gpu_stream(void* ndarray_handle, int32_t dev_id,
                                bridge_gpu_stream_seen* seen, char* error);

/* Push an operation writing `ndarray_handle` that fails on the engine thread the way a kernel
 * error does; the error must then surface at the next wait on the array (or from the push
 * itself under NaiveEngine, returned here as BRIDGE_E_MXNET). */
int32_t bridge_probe_engine_error(void* ndarray_handle, char* error);

/* Check a kernel's struct_size and ABI version before any other field is read. */
int32_t bridge_kernel_check(const bridge_kernel* kernel, char* error);
/* 1 when the kernel declared BRIDGE_KERNEL_ACCEPTS_BYTE_OFFSET (ABI 1.1 and later), else 0:
 * the engine consumer then stages misaligned CPU views through an aligned copy. */
int32_t bridge_kernel_accepts_byte_offset(const bridge_kernel* kernel);
/* Wrap a tvm-ffi Function handle as a kernel holding its own reference to the function;
 * `flags` are BRIDGE_KERNEL_* bits (what the caller knows the function accepts).
 * The caller owns one reference to *out and drops it with bridge_kernel_release. */
int32_t bridge_tvmffi_kernel_new(void* function_handle, const char* name, int32_t num_args,
                                 uint32_t flags, bridge_kernel** out, char* error);
/* Resolve the PackedFunc generation's C API (TVM < 0.20: TVMFuncCall, TVMGetLastError, ...)
 * from the libtvm / libtvm_runtime already loaded at `library_path`. */
int32_t bridge_tvm_legacy_bind(const char* library_path, char* error);
/* Wrap a PackedFunc generation function as a kernel. `source` is a TVMFunctionHandle (taken
 * with TVMObjectRetain), a TVMModuleHandle (its function `function_name`) or, when
 * `source_kind` is 2, a NUL-terminated path of an exported library loaded with
 * TVMModLoadFromFile (function `function_name`). With `verbose_errors` set, a failure's message
 * keeps TVM's whole text (backtrace included) instead of its first line. The caller owns one
 * reference to *out. */
#define BRIDGE_LEGACY_FROM_FUNCTION 0
#define BRIDGE_LEGACY_FROM_MODULE 1
#define BRIDGE_LEGACY_FROM_FILE 2
int32_t bridge_tvm_legacy_kernel_new(const void* source, int32_t source_kind,
                                     const char* function_name, const char* name,
                                     int32_t verbose_errors, bridge_kernel** out, char* error);
void bridge_kernel_retain(bridge_kernel* kernel);
void bridge_kernel_release(bridge_kernel* kernel);

/*
 * This consumer's own argument kind, never seen by a kernel: value.v_ptr is an MXNet
 * NDArrayHandle. The engine consumer turns each into a BRIDGE_ARG_TENSOR (a DLTensor*, the
 * protocol's only meaning of that kind) when the operation runs. In protocol.h's consumer
 * range (BRIDGE_ARG_CONSUMER_FIRST; a literal because cffi's cdef takes no expressions).
 */
#define BRIDGE_ARG_MXNET_NDARRAY 0x10000

/*
 * Push one operation running `kernel` on MXNet's engine. Arrays are passed as
 * BRIDGE_ARG_MXNET_NDARRAY (an NDArrayHandle in value.v_ptr; BRIDGE_ARG_TENSOR is refused:
 * a DLTensor* says nothing about the engine variable to depend on); `written[i]` is 1 for an
 * array the kernel writes, 0 for one it only reads. Everything is validated before the push
 * (the arity, when the kernel declares one, each array, the devices, aliasing): on any error
 * nothing is pushed. `name` is copied. The arrays and the kernel stay alive until the
 * operation ran.
 */
int32_t bridge_mxnet_push(bridge_kernel* kernel, const bridge_arg* args, const uint8_t* written,
                          int32_t num_args, int32_t priority, const char* name, char* error);

/* What stays the same across the calls of one wrapped function, planned once. */
typedef struct bridge_call_plan bridge_call_plan;
/* Plan calls of `kernel` (retained by the plan). An array at position i is read-only when
 * i < num_const_flags and const_flags[i] != 0, else written. `name` is copied. */
int32_t bridge_call_plan_new(bridge_kernel* kernel, const char* const_flags,
                             int32_t num_const_flags, int32_t priority, const char* name,
                             bridge_call_plan** out, char* error);
void bridge_call_plan_free(bridge_call_plan* plan);
/* Most extents one checked tensor parameter may have. */
#define BRIDGE_SPEC_MAX_DIMS 8
/* spec.kind for a parameter the signature does not describe: anything passes. */
#define BRIDGE_SPEC_UNCHECKED 0
/* What the kernel declares about one parameter (from TVM's embedded signature). */
typedef struct {
  int32_t kind;     /* BRIDGE_ARG_TENSOR, _INT, _FLOAT, _BOOL, or BRIDGE_SPEC_UNCHECKED */
  int32_t mx_dtype; /* tensors: the MXNet dtype flag expected, -1 for any */
  int32_t ndim;     /* tensors: number of extents, -1 for any */
  int32_t reserved;
  int64_t dims[BRIDGE_SPEC_MAX_DIMS]; /* >= 0 a fixed extent; -1 - k the symbolic extent k;
                                         BRIDGE_SPEC_MAX_DIMS ... unused */
  char name[32];    /* the parameter's name, for messages */
  char type[64];    /* how the signature writes its type, e.g. "Tensor([n], float32)" */
} bridge_param_spec;
/* Check every call of `plan` against `specs` before anything is pushed: the arity, each
 * argument's kind, and each array's dtype and shape (symbolic extents must agree across
 * arguments). `function` names the kernel in messages. */
int32_t bridge_call_plan_set_signature(bridge_call_plan* plan, const bridge_param_spec* specs,
                                       int32_t num_specs, const char* function, char* error);
/*
 * One bridged call: like bridge_mxnet_push, with the arguments as `packed_size` bytes of
 * bridge_arg records, one per argument (16 bytes each, native byte order, no alignment
 * needed): kind (int32), reserved (int32, zero), payload (8 bytes). The size alone gives the
 * number of arguments, so a count and a buffer cannot disagree. Kinds on this wire are
 * BRIDGE_ARG_MXNET_NDARRAY (payload: the NDArrayHandle as a uint64), BRIDGE_ARG_INT and
 * BRIDGE_ARG_BOOL (an int64; a bool 0 or 1) and BRIDGE_ARG_FLOAT (a double); anything else,
 * or a size that is not a whole number of records (at most BRIDGE_MAX_CALL_ARGS), is refused
 * before any record is read. Python packs
 * these with bridge_cffi.bridged_function.pack_arguments. Checks const_loc against the call,
 * then validates as bridge_mxnet_push does. In recorded-error mode a pending engine error is
 * returned first (BRIDGE_E_RECORDED) and nothing is pushed. On failure the message is in
 * bridge_last_error().
 */
int32_t bridge_call(const bridge_call_plan* plan, const char* packed, size_t packed_size);
/* The message of this thread's last failed bridge_call. */
const char* bridge_last_error(void);

/* Counters behind bridge_cffi.read_counters() and wait_until_released() (public API, so they
 * stay in the production extension): operations pushed, run, freed; DLPack deleters called. */
typedef struct {
  int64_t ops_pushed;
  int64_t ops_run;
  int64_t ops_freed;
  int64_t dlpack_taken;
  int64_t dlpack_deleted;
  int64_t kernels_alive;
  int64_t views_staged; /* misaligned views copied through an aligned buffer */
} bridge_counters;
void bridge_read_counters(bridge_counters* out);

/* ---- MXNet operators driven from C (consumers/mxnet/operators/custom_op.c, through
 * MXCustomOpRegister) ---- */
/* Most dimensions an operator's output may have. */
#define BRIDGE_OP_MAX_DIMS 16
/* Where one kernel parameter comes from: an array of MXNet's callback (`index` into the
 * callback's array list) or one of the operator's scalar attributes (`index` into them). */
typedef struct {
  int32_t is_scalar;
  int32_t index;
} bridge_op_slot;
/* One direction of an operator: its kernel (NULL: none) and where each parameter comes from. */
typedef struct {
  bridge_kernel* kernel;
  int32_t num_slots;
  const bridge_op_slot* slots;
} bridge_op_call;
/* Output shapes and dtypes at graph-build time, computed by the registering code. `context`
 * is the spec's; keys/values are the node's attributes as MXNet keeps them (strings). Input
 * i has in_ndims[i] extents in in_dims[i * BRIDGE_OP_MAX_DIMS ..]; fill the outputs likewise.
 * Return 0, or nonzero with a message in `error` (BRIDGE_ERROR_CAPACITY bytes). */
typedef int32_t (*bridge_op_shape_fn)(void* context, int32_t num_attrs, const char** keys,
                                      const char** values, int32_t num_inputs,
                                      const int32_t* in_ndims, const int64_t* in_dims,
                                      int32_t num_outputs, int32_t* out_ndims, int64_t* out_dims,
                                      char* error);
/* Likewise for dtypes (MXNet dtype flags; -1 for one not known yet): fill the outputs, and the
 * inputs still unknown where the rule knows them (MXNet infers graphs in both directions). */
typedef int32_t (*bridge_op_type_fn)(void* context, int32_t num_attrs, const char** keys,
                                     const char** values, int32_t num_inputs,
                                     int32_t* in_types, int32_t num_outputs,
                                     int32_t* out_types, char* error);
/* Which arrays the backward reads: group 0 an output's gradient, 1 an input, 2 an output. */
typedef struct {
  int32_t group;
  int32_t index;
} bridge_op_dependency;
/* An operator as bridge_op_register takes it; everything is copied. */
typedef struct {
  const char* name;
  int32_t num_inputs;
  int32_t num_outputs;
  int32_t num_scalars;
  const char** input_names;
  const char** output_names;
  const char** scalar_names;
  const int32_t* scalar_kinds; /* BRIDGE_ARG_INT, _FLOAT or _BOOL */
  bridge_op_call forward;
  bridge_op_call backward; /* kernel NULL: not differentiable */
  int32_t num_backward_dependencies;
  const bridge_op_dependency* backward_dependencies;
  void* context;
  bridge_op_shape_fn infer_shape;
  bridge_op_type_fn infer_type;
} bridge_op_spec;
/* How MXNet reaches an operator. Through MXCustomOpRegister (MXNet 1.5.1 and later): it is
 * mx.nd.Custom / mx.sym.Custom with op_type its name, forward and backward run in C on MXNet's
 * custom-operator worker. As an extension library's operator (MXLoadLib, whose C interface
 * this extension implements for MX_LIBRARY_VERSION 11, MXNet 1.9): a native operator of its
 * name, run in C inside MXNet's own engine operation; registered once MXNet loads this
 * extension as a library (mx.library.load), which registers every operator still pending. */
#define BRIDGE_OP_ROUTE_CUSTOM_OP 1
#define BRIDGE_OP_ROUTE_EXTENSION_LIBRARY 2
/* Register `spec` under spec->name, reached by `route`; everything is copied. */
int32_t bridge_op_register(const bridge_op_spec* spec, int32_t route, char* error);
/* The MX_LIBRARY_VERSION whose extension-library interface this extension implements. */
int32_t bridge_extension_library_version(void);
/* ---- The direct consumer (consumers/direct.c): one synchronous call, no engine ---- */
/* Alignment of the data the direct consumer hands a kernel (protocol.h, invoke's `args`). */
#define BRIDGE_DIRECT_ALIGNMENT 64
/*
 * Call `kernel` now, on the calling thread, with the protocol's own argument encoding: an
 * argument of kind BRIDGE_ARG_TENSOR carries a DLTensor* (for instance a DLManagedTensor's
 * dl_tensor, which the caller keeps alive and deletes after this returns). `written[i]` is 1
 * for a tensor the kernel may write. Checks the kernel, the arity it declares, each tensor
 * (CPU, one device id, ndim and shape, dtype, compact strides, element-aligned data), then
 * invokes with stream NULL and tensors prepared as protocol.h promises (copies of the
 * caller's DLTensors: strides NULL; data aligned down to BRIDGE_DIRECT_ALIGNMENT plus
 * byte_offset for a kernel accepting byte_offset, else an aligned copy of a misaligned tensor,
 * copied back after a successful call when written). Returns BRIDGE_OK, BRIDGE_E_TYPE or
 * BRIDGE_E_VALUE naming the argument ("argument #i: ..."), or BRIDGE_E_KERNEL with the
 * kernel's message; nothing is run unless every argument passed.
 */
int32_t bridge_direct_call(bridge_kernel* kernel, const bridge_arg* args, const uint8_t* written,
                           int32_t num_args, char* error);
/* BRIDGE_CDEF_END runtime */

BRIDGE_STATIC_ASSERT(BRIDGE_ARG_MXNET_NDARRAY >= BRIDGE_ARG_CONSUMER_FIRST,
                     "the engine consumer's array kind must lie in the consumer range");

#endif /* BRIDGE_CFFI_RUNTIME_H_ */
