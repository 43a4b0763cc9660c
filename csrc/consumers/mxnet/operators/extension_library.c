/*
 * This extension as an MXNet extension library (MXLoadLib, `mx.library.load`): the C
 * functions MXNet 1.9's include/mxnet/lib_api.h declares between MXNet and a library
 * (MX_LIBRARY_VERSION 11). Its C++ half (MXTensor, CustomOp, the registries) stays on the
 * library's side of that boundary and is not needed: every function MXNet calls takes C types,
 * and the function pointers MXNet keeps per operator are opaque to it and only handed back to
 * these functions, so here they carry the operator's registry entry.
 *
 * An operator of this route is a native MXNet operator of its name: MXNet runs its forward
 * (and `_backward_<name>`) inside its own engine operation, through _opCallFCompute on the
 * engine thread, with no custom-operator worker and no extra push. Shape and type rules are
 * called when MXNet infers, on the caller's thread. A refusal returns MX_FAIL with its text
 * in this thread's message, which MXNet appends to the MXNetError it raises.
 *
 * MXNet asks for the operators when it loads the library; bridge_cffi.operators loads this
 * extension again after each registration, and each load registers the entries still pending.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumers/mxnet/operators/registry.h"

#define EXPORT __attribute__((visibility("default")))

enum { MX_LIBRARY_VERSION_SUPPORTED = 11, MX_FAIL = 0, MX_SUCCESS = 1 };
enum { TAG_MAX_OUTPUTS = 64 };

typedef void (*opaque_fn)(void);

/* The message of this thread's last refusal; MXNet reads it right after the call fails. */
static _Thread_local char t_message[BRIDGE_ERROR_CAPACITY];
static _Thread_local int t_has_message = 0;

static int fail(const op_entry* entry, const char* what, const char* message) {
  snprintf(t_message, sizeof t_message, ": bridge_cffi operator '%.100s': %s: %.800s",
           entry ? entry->name : "?", what, message);
  t_has_message = 1;
  return MX_FAIL;
}

static void clear_message(void) { t_has_message = 0; }

/* The entry an opaque pointer MXNet hands back stands for; `backward` when it is the address
 * of the entry's backward call. */
static op_entry* entry_of(const void* pointer, bool* backward) {
  op_entry* entry = bridge_op_find_any(pointer);
  if (entry != NULL && backward != NULL) {
    *backward = pointer == (const void*)&entry->backward;
  }
  return entry;
}

static opaque_fn as_opaque(const void* pointer) {
  opaque_fn fn;
  memcpy(&fn, &pointer, sizeof fn);
  return fn;
}

static const void* from_opaque(opaque_fn fn) {
  const void* pointer;
  memcpy(&pointer, &fn, sizeof pointer);
  return pointer;
}

int32_t bridge_extension_library_version(void) { return MX_LIBRARY_VERSION_SUPPORTED; }

EXPORT int _opVersion(void) { return MX_LIBRARY_VERSION_SUPPORTED; }

EXPORT int initialize(int version) {
  /* MXNet checked _opVersion already; 1.9.x is what implements version 11. */
  return version >= 10900 && version < 11000 ? MX_SUCCESS : MX_FAIL;
}

EXPORT int _msgSize(void) { return t_has_message; }

EXPORT void _msgGet(int index, const char** message) {
  *message = index == 0 && t_has_message ? t_message : "";
}

/* ---- operator registration (when MXNet loads the library) ---- */

/* The batch this load registers: taken when MXNet asks for the count. */
static op_entry* g_batch[256];
static int g_batch_size = 0;
static const char* const g_contexts[1] = {"cpu"};

EXPORT int _opRegSize(void) {
  g_batch_size = 0;
  for (op_entry* entry; g_batch_size < 256 && (entry = bridge_op_next_unloaded()) != NULL;) {
    entry->loaded = true;
    g_batch[g_batch_size++] = entry;
  }
  return g_batch_size;
}

/* Per entry, the opaque pointers MXNet keeps: forward and backward "fcomp" per context. */
typedef struct {
  opaque_fn forward[1];
  opaque_fn backward[1];
} entry_pointers;
static entry_pointers g_pointers[256];

EXPORT void _opRegGet(int index, const char** name, int* is_subgraph_op,
                      const char*** forward_ctx, opaque_fn** forward_fp, int* forward_count,
                      const char*** backward_ctx, opaque_fn** backward_fp, int* backward_count,
                      const char*** create_op_ctx, opaque_fn** create_op_fp,
                      int* create_op_count, opaque_fn* parse, opaque_fn* type, opaque_fn* stype,
                      opaque_fn* shape, opaque_fn* mutate) {
  op_entry* entry = g_batch[index];
  entry_pointers* pointers = &g_pointers[index];
  pointers->forward[0] = as_opaque(entry);
  pointers->backward[0] = as_opaque(&entry->backward);
  *name = entry->name;
  *is_subgraph_op = 0;
  *forward_ctx = (const char**)g_contexts;
  *forward_fp = pointers->forward;
  *forward_count = 1;
  *backward_ctx = (const char**)g_contexts;
  *backward_fp = pointers->backward;
  /* Always one: MXNet builds a gradient graph for hybridized blocks even when nothing asks for
   * it; taking a gradient of an operator without a backward then fails with the reason. */
  *backward_count = 1;
  *create_op_ctx = NULL;
  *create_op_fp = NULL;
  *create_op_count = 0;
  *parse = as_opaque(entry);
  *type = as_opaque(entry);
  *stype = NULL; /* dense only: MXNet checks that itself */
  *shape = as_opaque(entry);
  *mutate = NULL;
}

EXPORT void _opCallFree(void* pointer) { free(pointer); }

/* ---- graph-build time (the caller's thread) ---- */

EXPORT int _opCallParseAttrs(opaque_fn parse, const char* const* keys, const char* const* values,
                             int num, int* num_in, int* num_out) {
  clear_message();
  op_entry* entry = entry_of(from_opaque(parse), NULL);
  if (entry == NULL) return fail(NULL, "attributes", "unknown operator");
  bridge_arg scalars[entry->num_scalars > 0 ? entry->num_scalars : 1];
  char error[BRIDGE_ERROR_CAPACITY];
  if (!bridge_op_parse_attributes(entry, num, keys, values, scalars, error)) {
    return fail(entry, "attributes", error);
  }
  *num_in = entry->num_inputs;
  *num_out = entry->num_outputs;
  return MX_SUCCESS;
}

EXPORT int _opCallInferShape(opaque_fn shape, const char* const* keys, const char* const* values,
                             int num, unsigned int** in_shapes, int* in_dims, int num_in,
                             unsigned int*** mod_in_shapes, int** mod_in_dims,
                             unsigned int*** out_shapes, int** out_dims, int num_out) {
  clear_message();
  op_entry* entry = entry_of(from_opaque(shape), NULL);
  if (entry == NULL) return fail(NULL, "infer_shape", "unknown operator");
  if (num_in != entry->num_inputs || num_out != entry->num_outputs) {
    return fail(entry, "infer_shape", "unexpected array count");
  }
  /* MXNet frees every array below with _opCallFree. */
  *mod_in_shapes = calloc((size_t)num_in + 1, sizeof(unsigned int*));
  *mod_in_dims = calloc((size_t)num_in + 1, sizeof(int));
  *out_shapes = calloc((size_t)num_out + 1, sizeof(unsigned int*));
  *out_dims = calloc((size_t)num_out + 1, sizeof(int));
  if (!*mod_in_shapes || !*mod_in_dims || !*out_shapes || !*out_dims) {
    return fail(entry, "infer_shape", "out of memory");
  }
  bool known = true;
  for (int i = 0; i < num_in; ++i) {
    int ndim = in_dims[i] < 0 ? 0 : in_dims[i];
    if (ndim == 0) known = false;
    if (ndim > BRIDGE_OP_MAX_DIMS) {
      return fail(entry, "infer_shape", "an input has more dimensions than supported");
    }
    (*mod_in_dims)[i] = ndim;
    (*mod_in_shapes)[i] = calloc((size_t)ndim + 1, sizeof(unsigned int));
    if ((*mod_in_shapes)[i] == NULL) return fail(entry, "infer_shape", "out of memory");
    for (int d = 0; d < ndim; ++d) (*mod_in_shapes)[i][d] = in_shapes[i][d];
  }
  int32_t result_ndims[num_out > 0 ? num_out : 1];
  int64_t result_dims[(num_out > 0 ? num_out : 1) * BRIDGE_OP_MAX_DIMS];
  memset(result_ndims, 0, sizeof result_ndims);
  if (known && entry->infer_shape != NULL) {
    int32_t ndims[num_in > 0 ? num_in : 1];
    int64_t dims[(num_in > 0 ? num_in : 1) * BRIDGE_OP_MAX_DIMS];
    for (int i = 0; i < num_in; ++i) {
      ndims[i] = (*mod_in_dims)[i];
      for (int d = 0; d < ndims[i]; ++d) dims[i * BRIDGE_OP_MAX_DIMS + d] = in_shapes[i][d];
    }
    char error[BRIDGE_ERROR_CAPACITY];
    error[0] = '\0';
    if (entry->infer_shape(entry->context, num, (const char**)keys, (const char**)values, num_in,
                           ndims, dims, num_out, result_ndims, result_dims, error) != 0) {
      return fail(entry, "infer_shape", error[0] ? error : "refused without a message");
    }
  }
  for (int j = 0; j < num_out; ++j) {
    int ndim = result_ndims[j];
    if (ndim < 0 || ndim > BRIDGE_OP_MAX_DIMS) {
      return fail(entry, "infer_shape", "an output's dimension count is out of range");
    }
    (*out_dims)[j] = ndim;
    (*out_shapes)[j] = calloc((size_t)ndim + 1, sizeof(unsigned int));
    if ((*out_shapes)[j] == NULL) return fail(entry, "infer_shape", "out of memory");
    for (int d = 0; d < ndim; ++d) {
      (*out_shapes)[j][d] = (unsigned int)result_dims[j * BRIDGE_OP_MAX_DIMS + d];
    }
  }
  return MX_SUCCESS;
}

EXPORT int _opCallInferType(opaque_fn type, const char* const* keys, const char* const* values,
                            int num, int* in_types, int num_in, int* out_types, int num_out) {
  clear_message();
  op_entry* entry = entry_of(from_opaque(type), NULL);
  if (entry == NULL) return fail(NULL, "infer_type", "unknown operator");
  if (num_in != entry->num_inputs || num_out != entry->num_outputs) {
    return fail(entry, "infer_type", "unexpected array count");
  }
  for (int j = 0; j < num_out; ++j) out_types[j] = -1;
  if (entry->infer_type == NULL) return MX_SUCCESS;
  int32_t inputs[num_in > 0 ? num_in : 1];
  int32_t outputs[num_out > 0 ? num_out : 1];
  for (int i = 0; i < num_in; ++i) inputs[i] = in_types[i];
  for (int j = 0; j < num_out; ++j) outputs[j] = -1;
  char error[BRIDGE_ERROR_CAPACITY];
  error[0] = '\0';
  if (entry->infer_type(entry->context, num, (const char**)keys, (const char**)values, num_in,
                        inputs, num_out, outputs, error) != 0) {
    return fail(entry, "infer_type", error[0] ? error : "refused without a message");
  }
  for (int i = 0; i < num_in; ++i) in_types[i] = inputs[i];
  for (int j = 0; j < num_out; ++j) out_types[j] = outputs[j];
  return MX_SUCCESS;
}

/* ---- run time (inside MXNet's engine operation, on the engine thread) ---- */

/* DLPack dtypes of MXNet's dtype flags (lib_api.h's MXDType; bool is not among them). */
static bool dl_dtype(int flag, DLDataType* out) {
  static const DLDataType table[] = {{kDLFloat, 32, 1}, {kDLFloat, 64, 1}, {kDLFloat, 16, 1},
                                     {kDLUInt, 8, 1},   {kDLInt, 32, 1},   {kDLInt, 8, 1},
                                     {kDLInt, 64, 1}};
  if (flag < 0 || flag > 6) return false;
  *out = table[flag];
  return true;
}

EXPORT int _opCallFCompute(opaque_fn fcomp, const char* const* keys, const char* const* values,
                           int num, const int64_t** in_shapes, int* in_dims, void** in_data,
                           int* in_types, size_t* in_ids, const char** in_dev_type,
                           int* in_dev_id, int num_in, const int64_t** out_shapes, int* out_dims,
                           void** out_data, int* out_types, size_t* out_ids,
                           const char** out_dev_type, int* out_dev_id, int num_out,
                           void* cpu_malloc, void* cpu_alloc, void* gpu_malloc, void* gpu_alloc,
                           void* cuda_stream, void* sparse_malloc, void* sparse_alloc,
                           int* in_stypes, int* out_stypes, void** in_indices,
                           void** out_indices, void** in_indptr, void** out_indptr,
                           int64_t* in_indices_shapes, int64_t* out_indices_shapes,
                           int64_t* in_indptr_shapes, int64_t* out_indptr_shapes,
                           void* rng_cpu_states, void* rng_gpu_states) {
  (void)in_ids, (void)out_ids, (void)cpu_malloc, (void)cpu_alloc, (void)gpu_malloc;
  (void)gpu_alloc, (void)sparse_malloc, (void)sparse_alloc, (void)in_stypes, (void)out_stypes;
  (void)in_indices, (void)out_indices, (void)in_indptr, (void)out_indptr;
  (void)in_indices_shapes, (void)out_indices_shapes, (void)in_indptr_shapes;
  (void)out_indptr_shapes, (void)rng_cpu_states, (void)rng_gpu_states;
  clear_message();
  bool backward = false;
  op_entry* entry = entry_of(from_opaque(fcomp), &backward);
  if (entry == NULL) return fail(NULL, "compute", "unknown operator");
  const op_call* call = backward ? &entry->backward : &entry->forward;
  const char* direction = backward ? "backward" : "forward";
  if (call->kernel == NULL) {
    return fail(entry, direction,
                "it has no backward (register bridge_cffi.differentiable's pair to take "
                "gradients)");
  }
  bridge_arg scalars[entry->num_scalars > 0 ? entry->num_scalars : 1];
  char error[BRIDGE_ERROR_CAPACITY];
  error[0] = '\0';
  if (!bridge_op_parse_attributes(entry, num, keys, values, scalars, error)) {
    return fail(entry, "attributes", error);
  }
  int32_t n = call->num_slots;
  int total = num_in + num_out;
  bridge_arg args[n > 0 ? n : 1];
  uint8_t written[n > 0 ? n : 1];
  DLTensor tensors[n > 0 ? n : 1];
  memset(written, 0, sizeof written);
  DLDevice device = {kDLCPU, 0};
  for (int32_t i = 0; i < n; ++i) {
    const bridge_op_slot* slot = &call->slots[i];
    if (slot->is_scalar) {
      args[i] = scalars[slot->index];
      continue;
    }
    int k = slot->index;
    if (k < 0 || k >= total) return fail(entry, direction, "a parameter names no array");
    bool output = k >= num_in;
    int j = output ? k - num_in : k;
    DLTensor* tensor = &tensors[i];
    memset(tensor, 0, sizeof *tensor);
    if (!dl_dtype(output ? out_types[j] : in_types[j], &tensor->dtype)) {
      return fail(entry, direction, "an array has a dtype DLPack cannot express");
    }
    const char* kind = output ? out_dev_type[j] : in_dev_type[j];
    tensor->device.device_type = strcmp(kind, "gpu") == 0 ? kDLCUDA : kDLCPU;
    tensor->device.device_id = output ? out_dev_id[j] : in_dev_id[j];
    tensor->data = output ? out_data[j] : in_data[j];
    tensor->ndim = output ? out_dims[j] : in_dims[j];
    /* MXNet's shape arrays live as long as the call; the kernel reads them, never writes. */
    memcpy(&tensor->shape, output ? &out_shapes[j] : &in_shapes[j], sizeof tensor->shape);
    tensor->strides = NULL;
    tensor->byte_offset = 0;
    device = tensor->device;
    args[i].kind = BRIDGE_ARG_TENSOR;
    args[i].value.v_tensor = tensor;
    written[i] = output;
  }
  void* stream = device.device_type == kDLCUDA ? cuda_stream : NULL;
  int32_t status = bridge_invoke_tensors(call->kernel, args, written, n, device, stream,
                                         entry->name, error);
  if (status != BRIDGE_OK) return fail(entry, direction, error);
  return MX_SUCCESS;
}

/* ---- what MXNet looks up but never calls for these operators ----
 * MXLoadLib resolves every function of the interface; these operators have no storage-type
 * rule, mutated inputs or state, and the library has no partitioners or passes (their counts
 * are 0), so the rest are never called: they are declared without parameters and refuse. */

EXPORT int _opCallInferSType(void) { return MX_FAIL; }
EXPORT int _opCallMutateInputs(void) { return MX_FAIL; }
EXPORT int _opCallCreateOpState(void) { return MX_FAIL; }
EXPORT void _opCallDestroyOpState(void) {}
EXPORT int _opCallFStatefulCompute(void) { return MX_FAIL; }
EXPORT int _partRegSize(void) { return 0; }
EXPORT int _partRegGetCount(void) { return 0; }
EXPORT void _partRegGet(void) {}
EXPORT int _partCallSupportedOps(void) { return MX_FAIL; }
EXPORT int _partCallCreateSelector(void) { return MX_FAIL; }
EXPORT void _partCallSelect(void) {}
EXPORT void _partCallSelectInput(void) {}
EXPORT void _partCallSelectOutput(void) {}
EXPORT void _partCallFilter(void) {}
EXPORT void _partCallReset(void) {}
EXPORT int _partCallReviewSubgraph(void) { return MX_FAIL; }
EXPORT int _passRegSize(void) { return 0; }
EXPORT void _passRegGet(void) {}
EXPORT int _passCallGraphPass(void) { return MX_FAIL; }
