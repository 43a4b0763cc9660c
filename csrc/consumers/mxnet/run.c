/*
 * The run side of the MXNet engine consumer (operation.h has the timeline): on an engine
 * thread, once every dependency of a pushed operation is done, turn its array references into
 * DLPack views, invoke the kernel, on a GPU wait for the engine's stream, delete the views,
 * and report a failure into MXNet's engine. Also the two synchronous runs for callers that
 * already hold the arrays' dependencies (MXNet's operator callbacks, operators/).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumers/mxnet/layout.h"
#include "consumers/mxnet/operation.h"

static void delete_managed(pending_op* op, int32_t count) {
  for (int32_t i = 0; i < count; ++i) {
    if (op->managed[i] != NULL) {
      if (op->managed[i]->deleter) op->managed[i]->deleter(op->managed[i]);
      op->managed[i] = NULL;
      atomic_fetch_add(&g_dlpack_deleted, 1);
    }
  }
}

/* Turn the op's array references into DLTensors; on failure deletes what it made. */
static int32_t take_dlpack(pending_op* op, void* stream, char* error) {
  for (int32_t i = 0; i < op->num_args; ++i) {
    op->call_args[i] = op->args[i];
    op->managed[i] = NULL;
    if (op->args[i].kind != BRIDGE_ARG_MXNET_NDARRAY) continue;
    if (g_mx.MXNDArrayToDLPack(op->args[i].value.v_ptr, &op->managed[i]) != 0) {
      int32_t status = bridge_fail(error, BRIDGE_E_MXNET,
                                   "MXNDArrayToDLPack failed for argument %d: %s", (int)i,
                                   g_mx.MXGetLastError());
      op->managed[i] = NULL;
      unstage_views(op, false, stream);
      delete_managed(op, i);
      return status;
    }
    atomic_fetch_add(&g_dlpack_taken, 1);
    DLTensor* tensor = &op->managed[i]->dl_tensor;
    bridge_mxnet_fix_exported_tensor(tensor); /* bools, and data aligned (layout.c) */
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

void pending_op_run(void* run_context, void* param) {
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
      status = bridge_fail(error, BRIDGE_E_STATE,
                           "the run-context layout self-test has not confirmed where MXNet "
                           "keeps the stream; refusing to run on the GPU");
    } else {
      void* stream_object = bridge_mxnet_read_run_context(run_context).stream_object;
      stream = stream_object ? bridge_mxnet_cuda_stream(stream_object) : NULL;
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
    /* A kernel's message need not end (protocol.h bounds it, no more): end it before it is
     * scanned. MXNet's Python layer reorders multi-line messages as if they were tracebacks. */
    error[BRIDGE_ERROR_CAPACITY - 1] = '\0';
    for (char* c = error; *c; ++c) {
      if (*c == '\n') *c = ' ';
    }
    bridge_fail(message, status, "bridge_cffi: %.100s failed: %.600s%.280s", op->name,
                error[0] ? error : "the kernel reported an error without a message", called_with);
    /* MXNet keeps an operation's exception on the variables it writes; with none, a thrown
     * error would vanish without a trace, so record it for the next call instead. */
    if (op->writes_nothing && !pending_op_is_being_pushed(op)) {
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
  pending_op* op = pending_op_alloc(num_args, name);
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
      char called_with[320];
      called_with[0] = '\0';
      describe_call(op, called_with, sizeof called_with);
      error[BRIDGE_ERROR_CAPACITY - 1] = '\0'; /* a kernel's message need not end */
      char message[BRIDGE_ERROR_CAPACITY];
      memcpy(message, error, sizeof message);
      bridge_fail(error, status, "%s%s",
                  message[0] ? message : "the kernel reported an error without a message",
                  called_with);
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
  pending_op* op = pending_op_alloc(num_args, name);
  if (op == NULL) return bridge_fail(error, BRIDGE_E_MEMORY, "out of memory for one call");
  op->kernel = kernel; /* borrowed */
  op->stage_misaligned = !bridge_kernel_accepts_byte_offset(kernel);
  int32_t status = BRIDGE_OK;
  for (int32_t i = 0; i < num_args && status == BRIDGE_OK; ++i) {
    op->written[i] = args[i].kind == BRIDGE_ARG_TENSOR && written[i];
    if (args[i].kind != BRIDGE_ARG_TENSOR) continue;
    DLTensor* tensor = args[i].value.v_tensor;
    bridge_align_data_pointer(tensor);
    if (tensor->byte_offset != 0 && op->stage_misaligned && tensor->device.device_type == kDLCPU) {
      status = stage_view(tensor, &op->staged[i], error);
    }
  }
  if (status == BRIDGE_OK) {
    atomic_fetch_add(&g_ops_run, 1);
    status = kernel->invoke(kernel, args, num_args, device, stream, error);
    if (status != BRIDGE_OK && error[0] == '\0') {
      bridge_fail(error, status, "the kernel reported an error without a message");
    }
  }
  unstage_views(op, status == BRIDGE_OK, NULL);
  free(op);
  return status;
}
