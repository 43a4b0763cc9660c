/*
 * The push side of the MXNet engine consumer (operation.h has the timeline): on the caller's
 * thread, validate every argument, plan the engine dependencies, take one reference per array
 * and push the call as one operation through MXEnginePushSyncND, with read dependencies on the
 * arrays the kernel only reads and write dependencies on the rest. The engine callback
 * (run.c) is C all the way down. On any error nothing is pushed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumers/mxnet/layout.h"
#include "consumers/mxnet/operation.h"

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

/* Which pending op this thread's last param deleter freed: lets a failed push tell whether
 * MXNet already freed the op (it does once it took ownership) without touching freed memory. */
static _Thread_local const void* t_last_freed_op = NULL;
/* The op this thread is pushing: NaiveEngine runs it inside the push, whose caller then gets
 * a thrown error as the push's return code even when the op writes no array. */
static _Thread_local const void* t_pushing_op = NULL;

bool pending_op_is_being_pushed(const pending_op* op) { return t_pushing_op == op; }

/* The engine's param deleter: called once, after the op ran or when MXNet dropped it. */
static void op_free(void* param) {
  t_last_freed_op = param;
  pending_op_discard(param);
  atomic_fetch_add(&g_ops_freed, 1);
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

int32_t bridge_check_arg_count(int64_t num_args, char* error) {
  if (num_args < 0 || num_args > BRIDGE_MAX_CALL_ARGS) {
    return bridge_fail(error, BRIDGE_E_VALUE, "a call takes 0 to %d arguments, got %lld",
                       BRIDGE_MAX_CALL_ARGS, (long long)num_args);
  }
  return BRIDGE_OK;
}

int32_t bridge_mxnet_push(bridge_kernel* kernel, const bridge_arg* args, const uint8_t* written,
                          int32_t num_args, int32_t priority, const char* name, char* error) {
  int32_t counted = bridge_check_arg_count(num_args, error);
  if (counted != BRIDGE_OK) return counted;
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
  pending_op* op = pending_op_alloc(num_args, name ? name : bridge_kernel_shown_name(kernel));
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
      pending_op_discard(op);
      return status;
    }
  }
  kernel->retain(kernel);
  op->kernel = kernel;

  int32_t context[2] = {op->device_type, op->device_id};
  t_last_freed_op = NULL;
  t_pushing_op = op;
  int push_status =
      g_mx.MXEnginePushSyncND(pending_op_run, op, op_free, context, const_nds, num_const,
                              mutable_nds, num_mutable, NULL, priority, op->name);
  t_pushing_op = NULL;
  if (push_status != 0) {
    /* MXNet frees the op once it owns it, even when the push then fails (NaiveEngine runs the
     * op inside the push and rethrows its error); otherwise it is still ours to free. */
    status = bridge_fail(error, BRIDGE_E_MXNET, "%s", g_mx.MXGetLastError());
    if (t_last_freed_op == op) {
      atomic_fetch_add(&g_ops_pushed, 1); /* MXNet took it (and ran it, under NaiveEngine) */
    } else {
      pending_op_discard(op);
    }
    return status;
  }
  atomic_fetch_add(&g_ops_pushed, 1);
  return BRIDGE_OK;
}
