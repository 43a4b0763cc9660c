/*
 * The tvm-ffi producer: adapts any tvm-ffi Function (tvm.build output, load_inline, an
 * exported library, a Python callable converted by tvm_ffi) to the bridge_kernel protocol.
 * Only tvm-ffi's stable C ABI is used, so the TVM build's compiler and C++ ABI do not matter.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/bridge_internal.h"

typedef struct {
  bridge_kernel base; /* first, so a bridge_kernel* is a tvmffi_kernel* */
  atomic_llong references;
  void* function; /* one strong tvm-ffi reference, owned */
  char* name;     /* owned copy */
} tvmffi_kernel;

/* Arguments up to this count are converted on the stack; more use the heap. */
enum { STACK_ARGS = 16 };

/* Move tvm-ffi's raised error of this thread into `error` ("Kind: message"); returns `code`. */
static int32_t describe_raised_error(char* error, int32_t code) {
  void* raised = NULL;
  g_tvmffi.TVMFFIErrorMoveFromRaised(&raised);
  if (raised == NULL) {
    return bridge_fail(error, code, "tvm-ffi function failed without an error object");
  }
  const tvmffi_error_cell_prefix* cell =
      (const tvmffi_error_cell_prefix*)((const char*)raised + sizeof(tvmffi_object_header));
  bridge_fail(error, code, "%.*s: %.*s", (int)cell->kind.size, cell->kind.data,
              (int)cell->message.size, cell->message.data);
  g_tvmffi.TVMFFIObjectDecRef(raised);
  return code;
}

static int32_t convert_arg(const bridge_arg* in, tvmffi_any* out, int32_t position,
                           char* error) {
  out->zero_padding = 0;
  switch (in->kind) {
    case BRIDGE_ARG_TENSOR:
      out->type_index = TVMFFI_DLTENSOR_PTR;
      out->value.v_ptr = in->value.v_tensor;
      return 0;
    case BRIDGE_ARG_INT:
      out->type_index = TVMFFI_INT;
      out->value.v_int64 = in->value.v_int64;
      return 0;
    case BRIDGE_ARG_FLOAT:
      out->type_index = TVMFFI_FLOAT;
      out->value.v_float64 = in->value.v_float64;
      return 0;
    case BRIDGE_ARG_BOOL:
      out->type_index = TVMFFI_BOOL;
      out->value.v_int64 = in->value.v_int64 != 0;
      return 0;
    case BRIDGE_ARG_OPAQUE:
      out->type_index = TVMFFI_OPAQUE_PTR;
      out->value.v_ptr = in->value.v_ptr;
      return 0;
    default:
      return bridge_fail(error, BRIDGE_E_KERNEL, "argument %d has unknown kind %d",
                         (int)position, (int)in->kind);
  }
}

static int32_t tvmffi_invoke(bridge_kernel* self, const bridge_arg* args, int32_t num_args,
                             DLDevice device, void* stream, char* error) {
  tvmffi_kernel* kernel = (tvmffi_kernel*)self;
  tvmffi_any stack_anys[STACK_ARGS];
  tvmffi_any* anys = stack_anys;
  if (num_args > STACK_ARGS) {
    anys = malloc(sizeof(tvmffi_any) * (size_t)num_args);
    if (anys == NULL) {
      return bridge_fail(error, BRIDGE_E_MEMORY, "out of memory converting %d arguments",
                         (int)num_args);
    }
  }
  int32_t status = BRIDGE_OK;
  for (int32_t i = 0; i < num_args; ++i) {
    status = convert_arg(&args[i], &anys[i], i, error);
    if (status != BRIDGE_OK) goto done;
  }
  /* A kernel on a device stream takes it from tvm-ffi's environment: set the engine's stream
   * for this call and put the previous one back, so other callers on this thread see theirs. */
  void* previous_stream = NULL;
  bool stream_set = false;
  if (stream != NULL) {
    if (g_tvmffi.TVMFFIEnvSetStream == NULL) {
      status = bridge_fail(error, BRIDGE_E_SYMBOL,
                           "this tvm-ffi has no TVMFFIEnvSetStream; cannot run on a device "
                           "stream");
      goto done;
    }
    if (g_tvmffi.TVMFFIEnvSetStream(device.device_type, device.device_id, stream,
                                    &previous_stream) != 0) {
      status = describe_raised_error(error, BRIDGE_E_KERNEL);
      goto done;
    }
    stream_set = true;
  }
  tvmffi_any result;
  memset(&result, 0, sizeof result);
  result.type_index = TVMFFI_NONE;
  if (g_tvmffi.TVMFFIFunctionCall(kernel->function, anys, num_args, &result) != 0) {
    status = describe_raised_error(error, BRIDGE_E_KERNEL);
  } else if (result.type_index >= TVMFFI_STATIC_OBJECT_BEGIN) {
    /* The bridge has nowhere to return a value to; drop what the function handed back. */
    g_tvmffi.TVMFFIObjectDecRef(result.value.v_ptr);
  }
  if (stream_set && g_tvmffi.TVMFFIEnvSetStream(device.device_type, device.device_id,
                                                 previous_stream, NULL) != 0) {
    /* This thread's next tvm-ffi call would run on the engine's stream: fail the operation.
     * A kernel error already reported stays the cause; the restore's error is taken either
     * way, so it is not left raised for an unrelated later call. */
    char restore[BRIDGE_ERROR_CAPACITY];
    describe_raised_error(restore, BRIDGE_E_KERNEL);
    if (status == BRIDGE_OK) {
      status = bridge_fail(error, BRIDGE_E_KERNEL,
                           "restoring the thread's previous tvm-ffi stream failed: %.900s",
                           restore);
    }
  }
done:
  if (anys != stack_anys) free(anys);
  return status;
}

static void tvmffi_retain(bridge_kernel* self) {
  atomic_fetch_add(&((tvmffi_kernel*)self)->references, 1);
}

static void tvmffi_release(bridge_kernel* self) {
  tvmffi_kernel* kernel = (tvmffi_kernel*)self;
  if (atomic_fetch_sub(&kernel->references, 1) != 1) return;
  g_tvmffi.TVMFFIObjectDecRef(kernel->function);
  free(kernel->name);
  free(kernel);
  atomic_fetch_sub(&g_kernels_alive, 1);
}

int32_t bridge_tvmffi_kernel_new(void* function_handle, const char* name, int32_t num_args,
                                 uint32_t flags, bridge_kernel** out, char* error) {
  if (!atomic_load(&g_tvmffi_bound)) {
    return bridge_fail(error, BRIDGE_E_STATE, "tvm-ffi symbols are not bound yet");
  }
  if (function_handle == NULL) {
    return bridge_fail(error, BRIDGE_E_VALUE, "func: the tvm-ffi function handle is NULL");
  }
  tvmffi_kernel* kernel = calloc(1, sizeof *kernel);
  char* name_copy = bridge_copy_string(name ? name : "tvm_ffi_function");
  if (kernel == NULL || name_copy == NULL) {
    free(kernel);
    free(name_copy);
    return bridge_fail(error, BRIDGE_E_MEMORY, "out of memory creating a kernel");
  }
  if (g_tvmffi.TVMFFIObjectIncRef(function_handle) != 0) {
    free(kernel);
    free(name_copy);
    return bridge_fail(error, BRIDGE_E_KERNEL, "TVMFFIObjectIncRef refused the function handle");
  }
  kernel->base.struct_size = sizeof(bridge_kernel);
  kernel->base.abi_major = BRIDGE_ABI_MAJOR;
  kernel->base.abi_minor = BRIDGE_ABI_MINOR;
  kernel->base.name = name_copy;
  kernel->base.invoke = tvmffi_invoke;
  kernel->base.retain = tvmffi_retain;
  kernel->base.release = tvmffi_release;
  kernel->base.num_args = num_args;
  kernel->base.flags = flags;
  atomic_init(&kernel->references, 1);
  kernel->function = function_handle;
  kernel->name = name_copy;
  atomic_fetch_add(&g_kernels_alive, 1);
  *out = &kernel->base;
  return BRIDGE_OK;
}
