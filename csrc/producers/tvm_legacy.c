/*
 * The PackedFunc-generation producer: adapts a function of a TVM older than 0.20 (TVMFuncCall,
 * TVMValue + type codes; e.g. TVM 0.16 built by a third party) to the bridge_kernel protocol.
 * The function is called through TVM's C API only, resolved from the copy the process loaded,
 * so the TVM build's compiler and C++ ABI do not matter — the failure of MXNet's own
 * MXTVMBridge, which handed C++ PackedFunc objects across.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/bridge_internal.h"

typedef struct {
  bridge_kernel base; /* first, so a bridge_kernel* is a legacy_kernel* */
  atomic_llong references;
  void* function; /* TVMFunctionHandle, one reference owned, freed with TVMFuncFree */
  char* name;     /* owned copy */
  bool verbose_errors;
} legacy_kernel;

/* Arguments up to this count are converted on the stack; more use the heap. */
enum { STACK_ARGS = 16 };

/* TVM's last error is "Kind: message" then a backtrace, or a Python-style "Traceback ..."
 * block ending in that line. Keep the summary line unless the whole text was asked for. */
static void describe_last_error(const legacy_kernel* kernel, const char* what, char* error) {
  const char* text = g_tvm_legacy.TVMGetLastError();
  if (text == NULL || text[0] == '\0') {
    bridge_fail(error, BRIDGE_E_KERNEL, "%s failed without an error message", what);
    return;
  }
  if (kernel != NULL && kernel->verbose_errors) {
    bridge_fail(error, BRIDGE_E_KERNEL, "%s", text);
    return;
  }
  const char* line = text;
  if (strncmp(text, "Traceback", 9) == 0) {
    /* The summary is the last non-empty line. */
    const char* end = text + strlen(text);
    while (end > text && (end[-1] == '\n' || end[-1] == ' ')) --end;
    line = end;
    while (line > text && line[-1] != '\n') --line;
    bridge_fail(error, BRIDGE_E_KERNEL, "%.*s", (int)(end - line), line);
    return;
  }
  const char* newline = strchr(line, '\n');
  int length = newline ? (int)(newline - line) : (int)strlen(line);
  bridge_fail(error, BRIDGE_E_KERNEL, "%.*s", length, line);
}

static int convert_arg(const bridge_arg* in, tvm_legacy_value* value, int* code,
                       int32_t position, char* error) {
  switch (in->kind) {
    case BRIDGE_ARG_TENSOR:
      value->v_handle = in->value.v_tensor;
      *code = TVM_LEGACY_DLTENSOR;
      return 0;
    case BRIDGE_ARG_INT:
      value->v_int64 = in->value.v_int64;
      *code = TVM_LEGACY_INT;
      return 0;
    case BRIDGE_ARG_FLOAT:
      value->v_float64 = in->value.v_float64;
      *code = TVM_LEGACY_FLOAT;
      return 0;
    case BRIDGE_ARG_BOOL:
      /* The PackedFunc generation passes bool as kDLInt 0/1 (its generated code checks that). */
      value->v_int64 = in->value.v_int64 != 0;
      *code = TVM_LEGACY_INT;
      return 0;
    case BRIDGE_ARG_OPAQUE:
      value->v_handle = in->value.v_ptr;
      *code = TVM_LEGACY_OPAQUE;
      return 0;
    default:
      bridge_fail(error, BRIDGE_E_KERNEL, "argument %d has unknown kind %d", (int)position,
                  (int)in->kind);
      return -1;
  }
}

/* The bridge has nowhere to return a value to: drop a handle the function handed back. */
static void free_returned(tvm_legacy_value value, int code) {
  switch (code) {
    case TVM_LEGACY_OBJECT:
      g_tvm_legacy.TVMObjectFree(value.v_handle);
      break;
    case TVM_LEGACY_MODULE:
      g_tvm_legacy.TVMModFree(value.v_handle);
      break;
    case TVM_LEGACY_PACKED_FUNC:
      g_tvm_legacy.TVMFuncFree(value.v_handle);
      break;
    case TVM_LEGACY_NDARRAY:
      if (g_tvm_legacy.TVMArrayFree) g_tvm_legacy.TVMArrayFree(value.v_handle);
      break;
    default:
      break; /* plain values and thread-local strings own nothing */
  }
}

static int32_t legacy_invoke(bridge_kernel* self, const bridge_arg* args, int32_t num_args,
                             DLDevice device, void* stream, char* error) {
  legacy_kernel* kernel = (legacy_kernel*)self;
  tvm_legacy_value stack_values[STACK_ARGS];
  int stack_codes[STACK_ARGS];
  tvm_legacy_value* values = stack_values;
  int* codes = stack_codes;
  if (num_args > STACK_ARGS) {
    values = malloc(sizeof(tvm_legacy_value) * (size_t)num_args);
    codes = malloc(sizeof(int) * (size_t)num_args);
    if (values == NULL || codes == NULL) {
      free(values);
      free(codes);
      bridge_fail(error, BRIDGE_E_MEMORY, "out of memory converting %d arguments",
                  (int)num_args);
      return BRIDGE_E_MEMORY;
    }
  }
  int32_t status = BRIDGE_OK;
  for (int32_t i = 0; i < num_args; ++i) {
    if (convert_arg(&args[i], &values[i], &codes[i], i, error) != 0) {
      status = BRIDGE_E_KERNEL;
      goto done;
    }
  }
  /* TVMSetStream sets this thread's stream for the device in TVM's device API; this generation
   * has no getter, so the default stream (NULL, what TVM assumes when nobody set one) is put
   * back after the call. The engine thread is MXNet's: nothing else on it sets TVM streams. */
  if (stream != NULL) {
    if (g_tvm_legacy.TVMSetStream == NULL) {
      bridge_fail(error, BRIDGE_E_SYMBOL,
                  "this TVM exports no TVMSetStream; cannot run on a device stream");
      status = BRIDGE_E_SYMBOL;
      goto done;
    }
    if (g_tvm_legacy.TVMSetStream(device.device_type, device.device_id, stream) != 0) {
      describe_last_error(kernel, "TVMSetStream", error);
      status = BRIDGE_E_KERNEL;
      goto done;
    }
  }
  tvm_legacy_value result;
  int result_code = TVM_LEGACY_NULL;
  result.v_int64 = 0;
  if (g_tvm_legacy.TVMFuncCall(kernel->function, values, codes, num_args, &result,
                               &result_code) != 0) {
    describe_last_error(kernel, kernel->name, error);
    status = BRIDGE_E_KERNEL;
  } else {
    free_returned(result, result_code);
  }
  if (stream != NULL &&
      g_tvm_legacy.TVMSetStream(device.device_type, device.device_id, NULL) != 0 &&
      status == BRIDGE_OK) {
    describe_last_error(kernel, "TVMSetStream (restoring the default stream)", error);
    status = BRIDGE_E_KERNEL;
  }
done:
  if (values != stack_values) free(values);
  if (codes != stack_codes) free(codes);
  return status;
}

static void legacy_retain(bridge_kernel* self) {
  atomic_fetch_add(&((legacy_kernel*)self)->references, 1);
}

static void legacy_release(bridge_kernel* self) {
  legacy_kernel* kernel = (legacy_kernel*)self;
  if (atomic_fetch_sub(&kernel->references, 1) != 1) return;
  g_tvm_legacy.TVMFuncFree(kernel->function);
  free(kernel->name);
  free(kernel);
  atomic_fetch_sub(&g_kernels_alive, 1);
}

/* One owned TVMFunctionHandle for `source`, or BRIDGE_E_* with the message in `error`. */
static int32_t take_function(const void* source, int32_t source_kind, const char* function_name,
                             void** out, char* error) {
  void* module = NULL;
  switch (source_kind) {
    case BRIDGE_LEGACY_FROM_FUNCTION:
      if (g_tvm_legacy.TVMObjectRetain((void*)source) != 0) {
        describe_last_error(NULL, "TVMObjectRetain", error);
        return BRIDGE_E_KERNEL;
      }
      *out = (void*)source;
      return BRIDGE_OK;
    case BRIDGE_LEGACY_FROM_MODULE:
      module = (void*)source;
      break;
    case BRIDGE_LEGACY_FROM_FILE:
      if (g_tvm_legacy.TVMModLoadFromFile((const char*)source, "so", &module) != 0) {
        describe_last_error(NULL, "TVMModLoadFromFile", error);
        return BRIDGE_E_VALUE;
      }
      break;
    default:
      return bridge_fail(error, BRIDGE_E_VALUE, "unknown source kind %d", (int)source_kind);
  }
  void* function = NULL;
  int status = g_tvm_legacy.TVMModGetFunction(module, function_name, 1, &function);
  /* The function holds its module; the loaded one is not needed beyond it. */
  if (source_kind == BRIDGE_LEGACY_FROM_FILE) g_tvm_legacy.TVMModFree(module);
  if (status != 0) {
    describe_last_error(NULL, "TVMModGetFunction", error);
    return BRIDGE_E_KERNEL;
  }
  if (function == NULL) {
    return bridge_fail(error, BRIDGE_E_VALUE, "func: the TVM module has no function %s",
                       function_name);
  }
  *out = function;
  return BRIDGE_OK;
}

int32_t bridge_tvm_legacy_kernel_new(const void* source, int32_t source_kind,
                                     const char* function_name, const char* name,
                                     int32_t verbose_errors, bridge_kernel** out, char* error) {
  if (!atomic_load(&g_tvm_legacy_bound)) {
    return bridge_fail(error, BRIDGE_E_STATE, "the TVM (PackedFunc) symbols are not bound yet");
  }
  if (source == NULL) {
    return bridge_fail(error, BRIDGE_E_VALUE, "func: the TVM handle is NULL");
  }
  const char* entry = function_name ? function_name : "__tvm_main__";
  char* name_copy = bridge_copy_string(name ? name : entry);
  legacy_kernel* kernel = calloc(1, sizeof *kernel);
  if (kernel == NULL || name_copy == NULL) {
    free(kernel);
    free(name_copy);
    return bridge_fail(error, BRIDGE_E_MEMORY, "out of memory creating a kernel");
  }
  void* function = NULL;
  int32_t status = take_function(source, source_kind, entry, &function, error);
  if (status != BRIDGE_OK) {
    free(kernel);
    free(name_copy);
    return status;
  }
  kernel->base.struct_size = sizeof(bridge_kernel);
  kernel->base.abi_major = BRIDGE_ABI_MAJOR;
  kernel->base.abi_minor = BRIDGE_ABI_MINOR;
  kernel->base.name = name_copy;
  kernel->base.invoke = legacy_invoke;
  kernel->base.retain = legacy_retain;
  kernel->base.release = legacy_release;
  kernel->base.num_args = -1; /* a PackedFunc checks its own count (num_args == N asserts) */
  kernel->base.flags = 0;     /* TVM's default buffers need byte_offset 0: views are staged */
  atomic_init(&kernel->references, 1);
  kernel->function = function;
  kernel->name = name_copy;
  kernel->verbose_errors = verbose_errors != 0;
  atomic_fetch_add(&g_kernels_alive, 1);
  *out = &kernel->base;
  return BRIDGE_OK;
}
