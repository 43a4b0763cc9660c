/*
 * The MXNet engine consumer: pushes a kernel call as one operation on MXNet's dependency
 * engine through MXEnginePushSyncND, with read dependencies on the arrays the kernel only
 * reads and write dependencies on the rest. The engine callback is C all the way down.
 *
 * Timeline of one operation:
 *   push (caller's thread)  validate every argument; take one reference per array argument
 *                           (MXNDArrayDetach, which never allocates or reads data); push.
 *   run (engine thread)     all dependencies are done: turn each reference into a DLTensor
 *                           (MXNDArrayToDLPack), invoke the kernel, on a GPU wait for the
 *                           engine's stream (finish_on_stream), call every DLPack deleter.
 *   free (engine thread)    drop the array references and the kernel reference.
 * DLPack is taken at run time, not at push time, because MXNDArrayToDLPack allocates a lazily
 * allocated array: at push time that would race with a pending native operation allocating
 * the same array on an engine thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/bridge_internal.h"

atomic_bool g_chunk_identity_confirmed = false;

atomic_bool g_run_context_confirmed = false;
atomic_llong g_ops_pushed = 0, g_ops_run = 0, g_ops_freed = 0, g_dlpack_taken = 0,
             g_dlpack_deleted = 0, g_kernels_alive = 0, g_views_staged = 0;

/* MXNet's mshadow type flags for the dtypes DLPack can express. */
enum {
  MX_FLOAT32 = 0,
  MX_FLOAT64 = 1,
  MX_FLOAT16 = 2,
  MX_UINT8 = 3,
  MX_INT32 = 4,
  MX_INT8 = 5,
  MX_INT64 = 6,
  MX_BOOL = 7,
  MX_BFLOAT16 = 12
};
enum { MX_DEFAULT_STORAGE = 0 };

/* A misaligned view handed to a kernel through an aligned copy (see stage_view). */
typedef struct {
  void* buffer; /* aligned copy the kernel sees, or NULL when the view is not staged */
  void* origin; /* where the view's elements live in MXNet's storage */
  size_t bytes;
  size_t capacity; /* the buffer's size: a multiple of STAGING_ALIGNMENT */
  bool on_device;  /* a GPU view: buffer is device memory from cuMemAllocAsync */
} staged_view;

/* One pending operation, allocated as a single block; freed by the engine's param deleter. */
typedef struct {
  bridge_kernel* kernel; /* one reference, owned */
  int32_t num_args;
  int32_t device_type; /* MXNet device type of the arrays (CPU family or GPU) */
  int32_t device_id;
  bridge_arg* args;             /* as pushed: BRIDGE_ARG_MXNET_NDARRAY, an owned reference */
  bridge_arg* call_args;        /* run-time copy for the kernel: BRIDGE_ARG_TENSOR, a DLTensor*
                                   into managed[i], where args has an NDArrayHandle */
  DLManagedTensor** managed;    /* run-time DLPack views, deleted before the run returns */
  staged_view* staged;          /* run-time: aligned copies of misaligned views */
  uint8_t* written;             /* per position: 1 when the kernel may write that array */
  char* name;                   /* operator name for MXNet's profiler */
  bool writes_nothing;          /* no write dependency: an engine error would be lost */
  bool stage_misaligned;        /* the kernel needs byte_offset 0 (no ACCEPTS_BYTE_OFFSET) */
  void* error_sink;             /* owned NDArrayHandle written when the op writes no array */
} pending_op;

/* Which pending op this thread's last param deleter freed: lets a failed push tell whether
 * MXNet already freed the op (it does once it took ownership) without touching freed memory. */
static _Thread_local const void* t_last_freed_op = NULL;
/* The op this thread is pushing: NaiveEngine runs it inside the push, whose caller then gets
 * a thrown error as the push's return code even when the op writes no array. */
static _Thread_local const void* t_pushing_op = NULL;

static pending_op* op_alloc(int32_t num_args, const char* name) {
  size_t name_size = strlen(name) + 1;
  size_t n = (size_t)num_args;
  /* Pointer-aligned members first, bytes last: every member stays naturally aligned. */
  size_t size = sizeof(pending_op) +
                n * (2 * sizeof(bridge_arg) + sizeof(DLManagedTensor*) + sizeof(staged_view) +
                     sizeof(uint8_t)) +
                name_size;
  pending_op* op = calloc(1, size);
  if (op == NULL) return NULL;
  char* cursor = (char*)(op + 1);
  op->args = (bridge_arg*)cursor;
  cursor += n * sizeof(bridge_arg);
  op->call_args = (bridge_arg*)cursor;
  cursor += n * sizeof(bridge_arg);
  op->managed = (DLManagedTensor**)cursor;
  cursor += n * sizeof(DLManagedTensor*);
  op->staged = (staged_view*)cursor;
  cursor += n * sizeof(staged_view);
  op->written = (uint8_t*)cursor;
  cursor += n * sizeof(uint8_t);
  op->name = cursor;
  memcpy(op->name, name, name_size);
  op->num_args = num_args;
  return op;
}

static void release_array_references(pending_op* op) {
  for (int32_t i = 0; i < op->num_args; ++i) {
    if (op->args[i].kind == BRIDGE_ARG_MXNET_NDARRAY && op->args[i].value.v_ptr != NULL) {
      g_mx.MXNDArrayFree(op->args[i].value.v_ptr);
      op->args[i].value.v_ptr = NULL;
    }
  }
}

/* Frees an op that never reached the engine. */
static void op_discard(pending_op* op) {
  release_array_references(op);
  if (op->error_sink) g_mx.MXNDArrayFree(op->error_sink);
  if (op->kernel) op->kernel->release(op->kernel);
  free(op);
}

/* The engine's param deleter: called once, after the op ran or when MXNet dropped it. */
static void op_free(void* param) {
  t_last_freed_op = param;
  op_discard(param);
  atomic_fetch_add(&g_ops_freed, 1);
}

static void delete_managed(pending_op* op, int32_t count) {
  for (int32_t i = 0; i < count; ++i) {
    if (op->managed[i] != NULL) {
      if (op->managed[i]->deleter) op->managed[i]->deleter(op->managed[i]);
      op->managed[i] = NULL;
      atomic_fetch_add(&g_dlpack_deleted, 1);
    }
  }
}

/*
 * MXNet exports a view with its offset folded into `data`, so a slice's data can sit at any
 * element boundary. Compilers such as TVM's assume `data` is aligned (64 bytes by default) and
 * use aligned vector loads: a misaligned view then crashes the engine thread. DLPack's answer
 * is `byte_offset`: keep `data` aligned and carry the rest there. A kernel built to accept
 * offsets reads the view correctly; one that requires byte_offset == 0 (TVM's default) refuses
 * it with a clear error instead of crashing.
 *
 * The unit is the alignment MXNet itself gives every allocation (64 bytes from 1.6 on, 16 in
 * 1.5.1, measured at start-up), so a whole array always arrives with byte_offset 0.
 */
static _Atomic uint32_t g_data_alignment = 64;

void bridge_set_data_alignment(uint32_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) alignment = 1;
  atomic_store(&g_data_alignment, alignment);
}

uint32_t bridge_data_alignment(void) { return atomic_load(&g_data_alignment); }

static void align_data_pointer(DLTensor* tensor) {
  uintptr_t address = (uintptr_t)tensor->data + (uintptr_t)tensor->byte_offset;
  uintptr_t aligned = address & ~(uintptr_t)(atomic_load(&g_data_alignment) - 1);
  tensor->data = (void*)aligned;
  tensor->byte_offset = address - aligned;
}

/*
 * A kernel that needs byte_offset 0 (TVM's default buffers: "Invalid x.byte_offset ... expected
 * 0") gets a misaligned view through an aligned copy of its elements: copied in here, on the
 * engine thread while the operation holds the array's dependency (no other operation can see
 * the copy), and copied back after the kernel for written arrays (unstage_views). MXNet exports
 * views compact (strides NULL), so the elements are one contiguous run. GPU views are staged
 * on the device instead (stage_device_view).
 */
/*
 * Each engine thread keeps the largest staging buffer it freed (up to SPARE_LIMIT) for the next
 * staged view. Without it, a view of 16 MiB or more got a fresh mmap each call, whose page
 * faults and zeroing cost 7 to 12 memcpys of the view (measured: 2^22 and 2^24 float32, TVM's
 * default-buffer kernel); with it, staging costs 0.6 to 1.15 memcpys at 2^20 to 2^24. Engine
 * threads live as long as the process.
 */
enum { SPARE_LIMIT = 64 << 20, STAGING_ALIGNMENT = 64 };
static _Thread_local void* t_spare_buffer = NULL;
static _Thread_local size_t t_spare_bytes = 0;

static int32_t stage_view(DLTensor* tensor, staged_view* staged, char* error) {
  size_t count = 1;
  for (int32_t d = 0; d < tensor->ndim; ++d) count *= (size_t)tensor->shape[d];
  size_t element = ((size_t)tensor->dtype.bits * tensor->dtype.lanes + 7) / 8;
  size_t bytes = count * element;
  /* Aligned as MXNet aligns allocations (at most 64 bytes), so the kernel sees what a whole
   * array would give it. */
  size_t rounded = (bytes + STAGING_ALIGNMENT - 1) / STAGING_ALIGNMENT * STAGING_ALIGNMENT;
  if (rounded == 0) rounded = STAGING_ALIGNMENT;
  void* buffer;
  if (t_spare_buffer != NULL && t_spare_bytes >= rounded) {
    buffer = t_spare_buffer;
    rounded = t_spare_bytes;
    t_spare_buffer = NULL;
    t_spare_bytes = 0;
  } else {
    buffer = aligned_alloc(STAGING_ALIGNMENT, rounded);
  }
  staged->capacity = rounded;
  if (buffer == NULL) {
    return bridge_fail(error, BRIDGE_E_MEMORY, "out of memory staging a %zu-byte view", bytes);
  }
  staged->origin = (char*)tensor->data + tensor->byte_offset;
  staged->buffer = buffer;
  staged->bytes = bytes;
  memcpy(buffer, staged->origin, bytes);
  tensor->data = buffer;
  tensor->byte_offset = 0;
  atomic_fetch_add(&g_views_staged, 1);
  return BRIDGE_OK;
}

/*
 * The GPU's counterpart: a misaligned GPU view for a kernel that needs byte_offset 0 gets an
 * aligned device buffer, allocated, filled, copied back and freed in stream order on the
 * engine's stream (cuMemAllocAsync, cuMemcpyDtoDAsync, cuMemFreeAsync), so the kernel, which
 * runs on that stream too, sees the copy, and the stream synchronize that ends every GPU
 * operation (finish_on_stream) also waits for the copy back. Without those driver functions
 * (before CUDA 11.2) GPU views are not staged and such a kernel refuses them itself.
 */
static int32_t stage_device_view(DLTensor* tensor, staged_view* staged, void* stream,
                                 char* error) {
  size_t count = 1;
  for (int32_t d = 0; d < tensor->ndim; ++d) count *= (size_t)tensor->shape[d];
  size_t bytes = count * (((size_t)tensor->dtype.bits * tensor->dtype.lanes + 7) / 8);
  uint64_t buffer = 0;
  uint64_t origin = (uint64_t)(uintptr_t)tensor->data + tensor->byte_offset;
  int result = g_cuda.cuMemAllocAsync(&buffer, bytes ? bytes : 1, stream);
  if (result == CUDA_SUCCESS_RESULT && bytes) {
    result = g_cuda.cuMemcpyDtoDAsync_v2(buffer, origin, bytes, stream);
    if (result != CUDA_SUCCESS_RESULT) g_cuda.cuMemFreeAsync(buffer, stream);
  }
  if (result != CUDA_SUCCESS_RESULT) {
    char described[256];
    bridge_cuda_describe(result, described, sizeof described);
    return bridge_fail(error, BRIDGE_E_MEMORY, "staging a %zu-byte GPU view failed: %s", bytes,
                       described);
  }
  staged->buffer = (void*)(uintptr_t)buffer;
  staged->origin = (void*)(uintptr_t)origin;
  staged->bytes = bytes;
  staged->capacity = bytes;
  staged->on_device = true;
  tensor->data = staged->buffer;
  tensor->byte_offset = 0;
  atomic_fetch_add(&g_views_staged, 1);
  return BRIDGE_OK;
}

/* Copy written views back (when the kernel succeeded) and release every staged copy (the
 * largest CPU one becomes this thread's spare; GPU ones are freed in stream order). Returns
 * the first CUDA error of a GPU copy back, else 0. */
static int unstage_views(pending_op* op, bool copy_back, void* stream) {
  int failed = CUDA_SUCCESS_RESULT;
  for (int32_t i = 0; i < op->num_args; ++i) {
    staged_view* staged = &op->staged[i];
    if (staged->buffer == NULL) continue;
    if (staged->on_device) {
      uint64_t buffer = (uint64_t)(uintptr_t)staged->buffer;
      if (copy_back && op->written[i] && staged->bytes) {
        int result = g_cuda.cuMemcpyDtoDAsync_v2((uint64_t)(uintptr_t)staged->origin, buffer,
                                                 staged->bytes, stream);
        if (failed == CUDA_SUCCESS_RESULT) failed = result;
      }
      g_cuda.cuMemFreeAsync(buffer, stream);
      staged->buffer = NULL;
      continue;
    }
    if (copy_back && op->written[i]) memcpy(staged->origin, staged->buffer, staged->bytes);
    if (staged->capacity <= SPARE_LIMIT && staged->capacity > t_spare_bytes) {
      free(t_spare_buffer); /* keep the larger one as this thread's spare */
      t_spare_buffer = staged->buffer;
      t_spare_bytes = staged->capacity;
    } else {
      free(staged->buffer);
    }
    staged->buffer = NULL;
  }
  return failed;
}

/* Turn the op's array references into DLTensors; on failure deletes what it made. */
static int32_t take_dlpack(pending_op* op, void* stream, char* error) {
  for (int32_t i = 0; i < op->num_args; ++i) {
    op->call_args[i] = op->args[i];
    op->managed[i] = NULL;
    if (op->args[i].kind != BRIDGE_ARG_MXNET_NDARRAY) continue;
    if (g_mx.MXNDArrayToDLPack(op->args[i].value.v_ptr, &op->managed[i]) != 0) {
      snprintf(error, BRIDGE_ERROR_CAPACITY, "MXNDArrayToDLPack failed for argument %d: %s",
               (int)i, g_mx.MXGetLastError());
      op->managed[i] = NULL;
      unstage_views(op, false, stream);
      delete_managed(op, i);
      return BRIDGE_E_MXNET;
    }
    atomic_fetch_add(&g_dlpack_taken, 1);
    DLTensor* tensor = &op->managed[i]->dl_tensor;
    /* MXNet exports its 1-byte bool as DLPack uint1, which misdescribes the storage; DLPack
     * (0.8+) and tvm-ffi spell a byte-sized bool as code 6 with 8 bits. */
    if (tensor->dtype.code == 1 && tensor->dtype.bits == 1) {
      tensor->dtype.code = kDLBool;
      tensor->dtype.bits = 8;
    }
    align_data_pointer(tensor);
    bool device_staging = tensor->device.device_type == kDLCUDA && atomic_load(&g_cuda_bound) &&
                          g_cuda.cuMemAllocAsync != NULL;
    if (tensor->byte_offset != 0 && op->stage_misaligned &&
        (tensor->device.device_type == kDLCPU || device_staging)) {
      int32_t status = tensor->device.device_type == kDLCPU
                           ? stage_view(tensor, &op->staged[i], error)
                           : stage_device_view(tensor, &op->staged[i], stream, error);
      if (status != BRIDGE_OK) {
        unstage_views(op, false, stream);
        delete_managed(op, i + 1);
        return status;
      }
    }
    /* The kernel sees the protocol's kind: a DLTensor*, never the NDArrayHandle. */
    op->call_args[i].kind = BRIDGE_ARG_TENSOR;
    op->call_args[i].value.v_tensor = tensor;
  }
  return BRIDGE_OK;
}

/* " (called with #0 float32 (30,), #1 int 7, ...)": what the kernel was actually given, for a
 * failure message (a kernel names a parameter; the user knows positions and values). */
static void describe_call(const pending_op* op, char* out, size_t capacity) {
  size_t used = (size_t)snprintf(out, capacity, " (called with");
  for (int32_t i = 0; i < op->num_args && used + 48 < capacity; ++i) {
    const bridge_arg* arg = &op->args[i];
    const char* comma = i ? "," : "";
    if (arg->kind == BRIDGE_ARG_MXNET_NDARRAY && op->managed[i] != NULL) {
      const DLTensor* t = &op->managed[i]->dl_tensor;
      static const char* const codes[] = {"int", "uint", "float", "handle", "bfloat", "complex",
                                          "bool"};
      const char* code = t->dtype.code < 7 ? codes[t->dtype.code] : "?";
      used += (size_t)snprintf(out + used, capacity - used, "%s #%d %s%u (", comma, (int)i, code,
                               (unsigned)t->dtype.bits);
      for (int32_t d = 0; d < t->ndim && used + 24 < capacity; ++d) {
        used += (size_t)snprintf(out + used, capacity - used, "%s%lld", d ? ", " : "",
                                 (long long)t->shape[d]);
      }
      used += (size_t)snprintf(out + used, capacity - used, "%s)", t->ndim == 1 ? "," : "");
    } else if (arg->kind == BRIDGE_ARG_INT) {
      used += (size_t)snprintf(out + used, capacity - used, "%s #%d int %lld", comma, (int)i,
                               (long long)arg->value.v_int64);
    } else if (arg->kind == BRIDGE_ARG_FLOAT) {
      used += (size_t)snprintf(out + used, capacity - used, "%s #%d float %g", comma, (int)i,
                               arg->value.v_float64);
    } else if (arg->kind == BRIDGE_ARG_BOOL) {
      used += (size_t)snprintf(out + used, capacity - used, "%s #%d bool %s", comma, (int)i,
                               arg->value.v_int64 ? "True" : "False");
    }
  }
  if (used + 2 < capacity) snprintf(out + used, capacity - used, ")");
}

/*
 * A GPU operation is complete only once its work on the engine's stream is done. The kernel
 * returns as soon as it has *enqueued* work on `stream`; were op_run to return then, MXNet's
 * engine would mark the operation complete and let readers (asnumpy(), a second bridged op on
 * another worker's stream, a copy) run on unfinished data: measured on an H200 under
 * ThreadedEnginePerDevice and ThreadedEngine (issue 10). MXNet 1.x has no cross-stream
 * events for an operation to hand its completion to the engine, and its own GPU operators do
 * exactly this: PushFCompute calls `rctx.get_stream<gpu>()->Wait()` (cudaStreamSynchronize)
 * before reporting completion. So the bridge synchronizes the stream here, on the engine
 * thread, after every GPU kernel, whether it succeeded or not (a failed kernel may have
 * enqueued work on arrays the engine is about to release). NaiveEngine needs it too: it runs
 * the operation inside the push and does not wait for the stream either (measured without
 * this sync: wait_to_read() and waitall() returned 0.1 ms after a 300 ms kernel was pushed,
 * under all three engines). CPU operations never get here. An error from the sync (a
 * kernel that faulted) fails the operation, so it reaches Python at the next wait; a kernel
 * error, if any, is kept as the first cause.
 */
static void finish_on_stream(void* stream, int32_t* status, char* error) {
  if (!atomic_load(&g_cuda_bound)) {
    if (*status == BRIDGE_OK) {
      *status = bridge_fail(error, BRIDGE_E_STATE,
                            "the CUDA driver is not bound: cannot wait for the kernel's stream");
    }
    return;
  }
  int result = g_cuda.cuStreamSynchronize(stream);
  if (result == CUDA_SUCCESS_RESULT || *status != BRIDGE_OK) return;
  char described[256];
  bridge_cuda_describe(result, described, sizeof described);
  *status = bridge_fail(error, BRIDGE_E_KERNEL,
                        "the GPU work the kernel launched failed: cuStreamSynchronize on the "
                        "engine's stream returned %s",
                        described);
}

static void op_run(void* run_context, void* param) {
  pending_op* op = param;
  char error[BRIDGE_ERROR_CAPACITY];
  char called_with[320];
  error[0] = '\0';
  called_with[0] = '\0';
  atomic_fetch_add(&g_ops_run, 1);
  void* stream = NULL;
  DLDevice device = {op->device_type == MX_DEV_GPU ? kDLCUDA : kDLCPU, op->device_id};
  int32_t status = BRIDGE_OK;
  if (op->device_type == MX_DEV_GPU) {
    /* Checked at push time too; the layout must be confirmed before it is dereferenced. */
    if (!atomic_load(&g_run_context_confirmed)) {
      snprintf(error, BRIDGE_ERROR_CAPACITY,
               "the run-context layout self-test has not confirmed where MXNet keeps the "
               "stream; refusing to run on the GPU");
      status = BRIDGE_E_STATE;
    } else {
      const mx_run_context_prefix* context = run_context;
      /* mshadow::Stream<gpu>'s first member is its cudaStream_t. */
      stream = context->stream ? *(void**)context->stream : NULL;
    }
  }
  if (status == BRIDGE_OK) status = take_dlpack(op, stream, error);
  if (status == BRIDGE_OK) {
    status = op->kernel->invoke(op->kernel, op->call_args, op->num_args, device, stream, error);
    int copied_back = unstage_views(op, status == BRIDGE_OK, stream);
    if (op->device_type == MX_DEV_GPU) {
      if (copied_back != CUDA_SUCCESS_RESULT && status == BRIDGE_OK) {
        char described[256];
        bridge_cuda_describe(copied_back, described, sizeof described);
        status = bridge_fail(error, BRIDGE_E_KERNEL, "copying a staged GPU view back failed: %s",
                             described);
      }
      finish_on_stream(stream, &status, error); /* after the copies back were enqueued */
    }
    if (status != BRIDGE_OK) describe_call(op, called_with, sizeof called_with);
    delete_managed(op, op->num_args);
  }
  if (status != BRIDGE_OK) {
    /* Everything this frame owns is released; the op itself belongs to MXNet's deleter. */
    char message[BRIDGE_ERROR_CAPACITY];
    /* MXNet's Python layer reorders multi-line messages as if they were tracebacks. */
    for (char* c = error; *c; ++c) {
      if (*c == '\n') *c = ' ';
    }
    snprintf(message, sizeof message, "bridge_cffi: %.100s failed: %.600s%.280s", op->name,
             error[0] ? error : "the kernel reported an error without a message", called_with);
    /* MXNet keeps an operation's exception on the variables it writes; with none, a thrown
     * error would vanish without a trace, so record it for the next call instead. */
    if (op->writes_nothing && t_pushing_op != op) {
      bridge_record_engine_error(message);
    } else {
      bridge_raise_in_engine(message);
    }
  }
}

/*
 * Run a kernel now, on the calling thread, for a caller that already holds the arrays'
 * dependencies: MXNet's custom-operator worker runs an operator's forward while the
 * operator's own engine operation is pending, so its arrays are ready and nothing else can
 * touch them. The same DLPack, bool and staging steps as an engine run apply; nothing is
 * pushed and nothing is thrown (the caller reports a failure its own way). CPU only: the
 * custom-operator worker has no device stream.
 */
int32_t bridge_mxnet_run_now(bridge_kernel* kernel, const bridge_arg* args,
                             const uint8_t* written, int32_t num_args, const char* name,
                             char* error) {
  pending_op* op = op_alloc(num_args, name);
  if (op == NULL) return bridge_fail(error, BRIDGE_E_MEMORY, "out of memory for one call");
  op->kernel = kernel; /* borrowed: the caller keeps it alive for the call */
  op->device_type = MX_DEV_CPU;
  op->stage_misaligned = !bridge_kernel_accepts_byte_offset(kernel);
  for (int32_t i = 0; i < num_args; ++i) {
    op->args[i] = args[i]; /* borrowed handles: the caller owns them */
    op->written[i] = args[i].kind == BRIDGE_ARG_MXNET_NDARRAY && written[i];
  }
  atomic_fetch_add(&g_ops_run, 1);
  DLDevice device = {kDLCPU, 0};
  int32_t status = take_dlpack(op, NULL, error);
  if (status == BRIDGE_OK) {
    status = kernel->invoke(kernel, op->call_args, num_args, device, NULL, error);
    if (status != BRIDGE_OK) {
      if (error[0] == '\0') {
        snprintf(error, BRIDGE_ERROR_CAPACITY, "the kernel reported an error without a message");
      }
      char called_with[320];
      called_with[0] = '\0';
      describe_call(op, called_with, sizeof called_with);
      error[BRIDGE_ERROR_CAPACITY - 1] = '\0'; /* a kernel's message need not end */
      size_t used = strlen(error);
      snprintf(error + used, BRIDGE_ERROR_CAPACITY - used, "%s", called_with);
    }
    unstage_views(op, status == BRIDGE_OK, NULL);
    delete_managed(op, num_args);
  }
  free(op);
  return status;
}

/*
 * Invoke a kernel now on DLTensors the caller built from MXNet's own arrays (an operator's
 * FCompute inside MXNet's engine operation, see extension_library.c): `data` may point
 * anywhere in a view; it is aligned down with the rest in byte_offset, and misaligned CPU
 * views are staged for kernels that need byte_offset 0, as for pushed calls.
 */
int32_t bridge_invoke_tensors(bridge_kernel* kernel, bridge_arg* args, const uint8_t* written,
                              int32_t num_args, DLDevice device, void* stream, const char* name,
                              char* error) {
  pending_op* op = op_alloc(num_args, name);
  if (op == NULL) return bridge_fail(error, BRIDGE_E_MEMORY, "out of memory for one call");
  op->kernel = kernel; /* borrowed */
  op->stage_misaligned = !bridge_kernel_accepts_byte_offset(kernel);
  int32_t status = BRIDGE_OK;
  for (int32_t i = 0; i < num_args && status == BRIDGE_OK; ++i) {
    op->written[i] = args[i].kind == BRIDGE_ARG_TENSOR && written[i];
    if (args[i].kind != BRIDGE_ARG_TENSOR) continue;
    DLTensor* tensor = args[i].value.v_tensor;
    align_data_pointer(tensor);
    if (tensor->byte_offset != 0 && op->stage_misaligned && tensor->device.device_type == kDLCPU) {
      status = stage_view(tensor, &op->staged[i], error);
    }
  }
  if (status == BRIDGE_OK) {
    atomic_fetch_add(&g_ops_run, 1);
    status = kernel->invoke(kernel, args, num_args, device, stream, error);
    if (status != BRIDGE_OK && error[0] == '\0') {
      snprintf(error, BRIDGE_ERROR_CAPACITY, "the kernel reported an error without a message");
    }
  }
  unstage_views(op, status == BRIDGE_OK, NULL);
  free(op);
  return status;
}

/* ---- push-time validation ---- */

const char* mx_dtype_name(int dtype) {
  switch (dtype) {
    case MX_FLOAT32: return "float32";
    case MX_FLOAT64: return "float64";
    case MX_FLOAT16: return "float16";
    case MX_UINT8: return "uint8";
    case MX_INT32: return "int32";
    case MX_INT8: return "int8";
    case MX_INT64: return "int64";
    case MX_BOOL: return "bool";
    case MX_BFLOAT16: return "bfloat16";
    default: return NULL;
  }
}

static bool same_device_family(int a, int b) {
  bool a_cpu = a != MX_DEV_GPU, b_cpu = b != MX_DEV_GPU;
  return a_cpu == b_cpu;
}

static int32_t check_array(void* handle, int32_t position, int* device_type, int* device_id,
                           int* out_dtype, char* error) {
  int storage = -1, dtype = -1;
  if (g_mx.MXNDArrayGetStorageType(handle, &storage) != 0) {
    return bridge_fail(error, BRIDGE_E_MXNET, "argument %d: MXNet could not read its storage: %s",
                       (int)position, g_mx.MXGetLastError());
  }
  if (storage != MX_DEFAULT_STORAGE) {
    return bridge_fail(error, BRIDGE_E_TYPE,
                       "argument %d: expected a dense NDArray (storage type 'default'), got a "
                       "sparse or undefined storage type (%d); call .tostype('default') first",
                       (int)position, storage);
  }
  if (g_mx.MXNDArrayGetDType(handle, &dtype) != 0) {
    return bridge_fail(error, BRIDGE_E_MXNET, "argument %d: MXNet could not read its dtype: %s",
                       (int)position, g_mx.MXGetLastError());
  }
  *out_dtype = dtype;
  if (mx_dtype_name(dtype) == NULL) {
    return bridge_fail(error, BRIDGE_E_TYPE,
                       "argument %d: MXNet dtype code %d has no DLPack equivalent the bridge "
                       "supports (float16/32/64, bfloat16, int8/32/64, uint8, bool)",
                       (int)position, dtype);
  }
  if (g_mx.MXNDArrayGetContext(handle, device_type, device_id) != 0) {
    return bridge_fail(error, BRIDGE_E_MXNET, "argument %d: MXNet could not read its context: %s",
                       (int)position, g_mx.MXGetLastError());
  }
  if (bridge_mxnet_chunk_word(handle) == NULL) {
    return bridge_fail(error, BRIDGE_E_VALUE, "argument %d: the NDArray has no storage",
                       (int)position);
  }
  return BRIDGE_OK;
}

void* bridge_mxnet_chunk_word(void* ndarray_handle) {
  /* NDArray's first member is std::shared_ptr<Chunk>, whose first word is the Chunk*. */
  return ndarray_handle ? *(void* const*)ndarray_handle : NULL;
}

/*
 * Build the engine's read and write lists: one entry per storage chunk (one engine variable),
 * written if any argument on that chunk is written. Pushing a variable twice, or as both read
 * and written, deadlocks MXNet's engine.
 */
static int32_t plan_dependencies(const bridge_arg* args, const uint8_t* written,
                                 int32_t num_args, void** const_nds, int* num_const,
                                 void** mutable_nds, int* num_mutable, char* error) {
  void* chunks[num_args > 0 ? num_args : 1];
  void* handles[num_args > 0 ? num_args : 1];
  bool writes[num_args > 0 ? num_args : 1];
  int unique = 0;
  int arrays = 0;
  for (int32_t i = 0; i < num_args; ++i) {
    if (args[i].kind != BRIDGE_ARG_MXNET_NDARRAY) continue;
    arrays++;
    void* chunk = bridge_mxnet_chunk_word(args[i].value.v_ptr);
    int found = -1;
    for (int j = 0; j < unique; ++j) {
      if (chunks[j] == chunk) found = j;
    }
    if (found < 0) {
      chunks[unique] = chunk;
      handles[unique] = args[i].value.v_ptr;
      writes[unique] = written[i] != 0;
      unique++;
    } else {
      writes[found] = writes[found] || written[i] != 0;
    }
  }
  if (!atomic_load(&g_chunk_identity_confirmed) && arrays > 1) {
    return bridge_fail(error, BRIDGE_E_VALUE,
                       "this MXNet failed the engine-variable identity self-test, so the bridge "
                       "cannot tell whether two arrays are views of one storage (which would "
                       "deadlock the engine); pass at most one NDArray per call, or run "
                       "`python -m abi_checks` for details");
  }
  *num_const = 0;
  *num_mutable = 0;
  for (int j = 0; j < unique; ++j) {
    if (writes[j]) {
      mutable_nds[(*num_mutable)++] = handles[j];
    } else {
      const_nds[(*num_const)++] = handles[j];
    }
  }
  return BRIDGE_OK;
}

int32_t bridge_mxnet_push(bridge_kernel* kernel, const bridge_arg* args, const uint8_t* written,
                          int32_t num_args, int32_t priority, const char* name, char* error) {
  return bridge_mxnet_push_checked(kernel, args, written, num_args, priority, name, NULL, error);
}

int32_t bridge_mxnet_push_checked(bridge_kernel* kernel, const bridge_arg* args,
                                  const uint8_t* written, int32_t num_args, int32_t priority,
                                  const char* name, const bridge_signature* signature,
                                  char* error) {
  if (!atomic_load(&g_mx_bound)) {
    return bridge_fail(error, BRIDGE_E_STATE, "MXNet symbols are not bound yet");
  }
  if (kernel == NULL) return bridge_fail(error, BRIDGE_E_VALUE, "kernel is NULL");
  if (num_args < 0 || num_args > BRIDGE_MAX_CALL_ARGS) {
    return bridge_fail(error, BRIDGE_E_VALUE, "a call takes 0 to %d arguments, got %d",
                       BRIDGE_MAX_CALL_ARGS, (int)num_args);
  }
  if (kernel->num_args >= 0 && kernel->num_args != num_args) {
    return bridge_fail(error, BRIDGE_E_TYPE, "takes %d arguments, got %d",
                       (int)kernel->num_args, (int)num_args);
  }
  int device_type = MX_DEV_CPU, device_id = 0;
  int32_t first_array = -1;
  int dtypes[num_args > 0 ? num_args : 1];
  dtypes[0] = -1; /* (num_args may be 0) */
  for (int32_t i = 0; i < num_args; ++i) {
    dtypes[i] = -1;
    if (args[i].kind == BRIDGE_ARG_TENSOR) {
      /* A DLTensor* names no engine variable to depend on: arrays come as NDArrayHandles. */
      return bridge_fail(error, BRIDGE_E_TYPE,
                         "argument %d is a DLTensor (BRIDGE_ARG_TENSOR); the engine consumer "
                         "takes MXNet arrays as BRIDGE_ARG_MXNET_NDARRAY",
                         (int)i);
    }
    if (args[i].kind != BRIDGE_ARG_MXNET_NDARRAY &&
        (args[i].kind < BRIDGE_ARG_INT || args[i].kind > BRIDGE_ARG_OPAQUE)) {
      return bridge_fail(error, BRIDGE_E_TYPE, "argument %d has unknown kind %d", (int)i,
                         (int)args[i].kind);
    }
    if (args[i].kind != BRIDGE_ARG_MXNET_NDARRAY) continue;
    int arg_type = 0, arg_id = 0;
    int32_t status = check_array(args[i].value.v_ptr, i, &arg_type, &arg_id, &dtypes[i], error);
    if (status != BRIDGE_OK) return status;
    if (first_array < 0) {
      first_array = i;
      device_type = arg_type;
      device_id = arg_id;
    } else if (!same_device_family(arg_type, device_type) || arg_id != device_id) {
      return bridge_fail(error, BRIDGE_E_VALUE,
                         "argument %d is on device (type %d, id %d) but argument %d is on "
                         "(type %d, id %d); all arrays of one call must be on one device",
                         (int)i, arg_type, arg_id, (int)first_array, device_type, device_id);
    }
  }
  if (signature != NULL) {
    int32_t status = bridge_signature_check(signature, args, dtypes, num_args, error);
    if (status != BRIDGE_OK) return status;
  }
  if (device_type == MX_DEV_GPU) {
    if (!atomic_load(&g_run_context_confirmed)) {
      return bridge_fail(error, BRIDGE_E_STATE,
                         "GPU arrays need the engine's CUDA stream, and the run-context layout "
                         "self-test has not confirmed where MXNet keeps it on this build");
    }
    const char* reason = NULL;
    int32_t gpu = bridge_gpu_state(device_id, &reason);
    if (gpu == BRIDGE_GPU_UNTESTED) {
      /* The caller runs this GPU's stream self-test and calls again. */
      bridge_note_untested_gpu(device_id);
      return bridge_fail(error, BRIDGE_E_GPU_UNTESTED,
                         "gpu(%d): the stream self-test has not run yet", device_id);
    }
    if (gpu != BRIDGE_GPU_CONFIRMED || !atomic_load(&g_cuda_bound)) {
      return bridge_fail(error, BRIDGE_E_STATE,
                         "GPU arrays on gpu(%d) are refused: %s (run `python -m abi_checks` "
                         "for the report)",
                         device_id, reason && reason[0] ? reason : "the CUDA driver is not bound");
    }
  }
  void* const_nds[num_args > 0 ? num_args : 1];
  void* mutable_nds[num_args > 0 ? num_args : 1];
  int num_const = 0, num_mutable = 0;
  int32_t status = plan_dependencies(args, written, num_args, const_nds, &num_const, mutable_nds,
                                     &num_mutable, error);
  if (status != BRIDGE_OK) return status;
  pending_op* op = op_alloc(num_args, name ? name : bridge_kernel_shown_name(kernel));
  if (op == NULL) return bridge_fail(error, BRIDGE_E_MEMORY, "out of memory for one operation");
  if (num_mutable == 0 && g_mx.MXNDArrayCreateEx != NULL) {
    /* MXNet keeps an operation's error on the variables it writes; that is how waits, and
     * mx.nd.waitall(), find it. An operation writing no array writes a fresh, never-allocated
     * one-element array of its own instead (nothing else depends on it, so a failure poisons
     * no other operation). */
    const uint32_t shape[1] = {1};
    if (g_mx.MXNDArrayCreateEx(shape, 1, MX_DEV_CPU, 0, 1, MX_FLOAT32, &op->error_sink) != 0) {
      status = bridge_fail(error, BRIDGE_E_MXNET, "MXNDArrayCreateEx failed: %s",
                           g_mx.MXGetLastError());
      free(op);
      return status;
    }
    mutable_nds[num_mutable++] = op->error_sink;
  }
  /* CPU-family arrays (cpu, cpu_pinned, cpu_shared) all run on the CPU engine. */
  op->device_type = device_type == MX_DEV_GPU ? MX_DEV_GPU : MX_DEV_CPU;
  op->device_id = device_id;
  op->writes_nothing = num_mutable == 0;
  op->stage_misaligned = !bridge_kernel_accepts_byte_offset(kernel);
  for (int32_t i = 0; i < num_args; ++i) {
    op->args[i] = args[i];
    op->written[i] = args[i].kind == BRIDGE_ARG_MXNET_NDARRAY && written[i];
    if (args[i].kind != BRIDGE_ARG_MXNET_NDARRAY) continue;
    op->args[i].value.v_ptr = NULL;
    if (g_mx.MXNDArrayDetach(args[i].value.v_ptr, &op->args[i].value.v_ptr) != 0) {
      status = bridge_fail(error, BRIDGE_E_MXNET, "argument %d: MXNDArrayDetach failed: %s",
                           (int)i, g_mx.MXGetLastError());
      op_discard(op);
      return status;
    }
  }
  kernel->retain(kernel);
  op->kernel = kernel;

  int32_t context[2] = {op->device_type, op->device_id};
  t_last_freed_op = NULL;
  t_pushing_op = op;
  int push_status = g_mx.MXEnginePushSyncND(op_run, op, op_free, context, const_nds, num_const,
                                            mutable_nds, num_mutable, NULL, priority, op->name);
  t_pushing_op = NULL;
  if (push_status != 0) {
    /* MXNet frees the op once it owns it, even when the push then fails (NaiveEngine runs the
     * op inside the push and rethrows its error); otherwise it is still ours to free. */
    status = bridge_fail(error, BRIDGE_E_MXNET, "%s", g_mx.MXGetLastError());
    if (t_last_freed_op == op) {
      atomic_fetch_add(&g_ops_pushed, 1); /* MXNet took it (and ran it, under NaiveEngine) */
    } else {
      op_discard(op);
    }
    return status;
  }
  atomic_fetch_add(&g_ops_pushed, 1);
  return BRIDGE_OK;
}

/* ---- self-test support ---- */

void bridge_confirm_chunk_identity(int32_t confirmed) {
  atomic_store(&g_chunk_identity_confirmed, confirmed != 0);
}

void bridge_confirm_run_context_layout(int32_t confirmed) {
  atomic_store(&g_run_context_confirmed, confirmed != 0);
}

static void probe_run(void* run_context, void* param) {
  bridge_run_context_seen* seen = param;
  const mx_run_context_prefix* context = run_context;
  seen->dev_type = context->dev_type;
  seen->dev_id = context->dev_id;
  seen->stream_is_null = context->stream == NULL;
  seen->ran = 1;
}

int32_t bridge_probe_run_context(void* ndarray_handle, int32_t dev_type, int32_t dev_id,
                                 bridge_run_context_seen* seen, char* error) {
  if (!atomic_load(&g_mx_bound)) {
    return bridge_fail(error, BRIDGE_E_STATE, "MXNet symbols are not bound yet");
  }
  memset(seen, 0, sizeof *seen);
  int32_t context[2] = {dev_type, dev_id};
  void* mutable_nds[1] = {ndarray_handle};
  if (g_mx.MXEnginePushSyncND(probe_run, seen, NULL, context, NULL, 0, mutable_nds, 1, NULL, 0,
                              "bridge_cffi_run_context_probe") != 0) {
    return bridge_fail(error, BRIDGE_E_MXNET, "%s", g_mx.MXGetLastError());
  }
  return BRIDGE_OK;
}

static void gpu_probe_run(void* run_context, void* param) {
  bridge_gpu_stream_seen* seen = param;
  const mx_run_context_prefix* context = run_context;
  seen->dev_type = context->dev_type;
  seen->dev_id = context->dev_id;
  seen->stream_object_is_null = context->stream == NULL;
  seen->context_matches = -1;
  seen->query_result = -1;
  if (context->stream != NULL) {
    /* mshadow::Stream<gpu>'s first member is its cudaStream_t: what op_run relies on. */
    void* stream = *(void**)context->stream;
    seen->stream = (uint64_t)(uintptr_t)stream;
    /* The legacy (0x1) and per-thread (0x2) default-stream handles, and NULL, are not
     * pointers a driver call should be handed as a stream object here: the caller refuses. */
    if ((uintptr_t)stream > 2) {
      seen->query_result = g_cuda.cuStreamQuery(stream);
      void* owner = NULL;
      void* current = NULL;
      if (g_cuda.cuStreamGetCtx != NULL && g_cuda.cuCtxGetCurrent != NULL &&
          g_cuda.cuStreamGetCtx(stream, &owner) == CUDA_SUCCESS_RESULT &&
          g_cuda.cuCtxGetCurrent(&current) == CUDA_SUCCESS_RESULT) {
        seen->context_matches = owner != NULL && owner == current;
      }
    }
  }
  seen->ran = 1;
}

int32_t bridge_probe_gpu_stream(void* ndarray_handle, int32_t dev_id,
                                bridge_gpu_stream_seen* seen, char* error) {
  if (!atomic_load(&g_mx_bound)) {
    return bridge_fail(error, BRIDGE_E_STATE, "MXNet symbols are not bound yet");
  }
  if (!atomic_load(&g_run_context_confirmed)) {
    return bridge_fail(error, BRIDGE_E_STATE,
                       "the run-context layout self-test has not confirmed the Context prefix");
  }
  if (!atomic_load(&g_cuda_bound)) {
    return bridge_fail(error, BRIDGE_E_STATE, "the CUDA driver symbols are not bound yet");
  }
  memset(seen, 0, sizeof *seen);
  int32_t context[2] = {MX_DEV_GPU, dev_id};
  void* mutable_nds[1] = {ndarray_handle};
  if (g_mx.MXEnginePushSyncND(gpu_probe_run, seen, NULL, context, NULL, 0, mutable_nds, 1, NULL,
                              0, "bridge_cffi_gpu_stream_probe") != 0) {
    return bridge_fail(error, BRIDGE_E_MXNET, "%s", g_mx.MXGetLastError());
  }
  return BRIDGE_OK;
}

static void probe_fail(void* run_context, void* param) {
  (void)run_context;
  (void)param;
  bridge_raise_in_engine("bridge_cffi self-test: engine error propagation");
}

int32_t bridge_probe_engine_error(void* ndarray_handle, char* error) {
  if (!atomic_load(&g_mx_bound)) {
    return bridge_fail(error, BRIDGE_E_STATE, "MXNet symbols are not bound yet");
  }
  int32_t context[2] = {MX_DEV_CPU, 0};
  void* mutable_nds[1] = {ndarray_handle};
  if (g_mx.MXEnginePushSyncND(probe_fail, NULL, NULL, context, NULL, 0, mutable_nds, 1, NULL, 0,
                              "bridge_cffi_error_probe") != 0) {
    return bridge_fail(error, BRIDGE_E_MXNET, "%s", g_mx.MXGetLastError());
  }
  return BRIDGE_OK;
}

void bridge_read_counters(bridge_counters* out) {
  out->ops_pushed = atomic_load(&g_ops_pushed);
  out->ops_run = atomic_load(&g_ops_run);
  out->ops_freed = atomic_load(&g_ops_freed);
  out->dlpack_taken = atomic_load(&g_dlpack_taken);
  out->dlpack_deleted = atomic_load(&g_dlpack_deleted);
  out->kernels_alive = atomic_load(&g_kernels_alive);
  out->views_staged = atomic_load(&g_views_staged);
}
