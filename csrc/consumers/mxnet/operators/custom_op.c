/*
 * Bridged kernels as MXNet operators, through MXNet's C custom-operator protocol
 * (MXCustomOpRegister, the C side of mx.operator.CustomOp; MXNet 1.5.1 to 1.9.1 export it).
 * An operator registered here is `mx.nd.Custom(..., op_type=name)` / `mx.sym.Custom(...)`:
 * it can sit in Symbol graphs, hybridized Gluon blocks and exported symbol files.
 *
 * Who calls what, and on which thread:
 *   creator, list_*, infer_shape, infer_type, declare_backward_dependency, create_operator
 *       MXNet, while it builds or binds a graph or invokes the operator imperatively, on the
 *       caller's thread inside an MXNet C API call. Shape and type rules are the registering
 *       code's (bridge_op_shape_fn/type_fn); a refusal is thrown as std::runtime_error, which
 *       the C API's API_END turns into the MXNetError the caller sees.
 *   forward, backward
 *       MXNet's custom-operator worker thread, while the operator's own engine operation is
 *       pending (its inputs are ready, its outputs are not yet visible to anyone). The kernel
 *       runs right there through bridge_mxnet_run_now: no Python and no extra engine push.
 *       MXNet then pushes its completion operation. A failure must not be thrown here (the
 *       worker catches dmlc::Error only); it is returned as 0, which MXNet turns into the
 *       operator's error at the next wait, and its text is written to stderr, as MXNet's own
 *       Python custom operators print theirs.
 * Operators live as long as the process: MXNet has no way to unregister one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumers/mxnet/operators/registry.h"

/* MXNet's MXCallbackList (c_api.h); the layout is the same from 1.5.1 to 1.9.1. */
typedef int (*mx_generic_callback)(void);
typedef struct {
  int num_callbacks;
  mx_generic_callback* callbacks;
  void** contexts;
} mx_callback_list;

/* Indices of MXNet's CustomOpPropCallbacks and CustomOpCallbacks enums. */
enum {
  PROP_DELETE,
  PROP_LIST_ARGUMENTS,
  PROP_LIST_OUTPUTS,
  PROP_LIST_AUXILIARY_STATES,
  PROP_INFER_SHAPE,
  PROP_DECLARE_BACKWARD_DEPENDENCY,
  PROP_CREATE_OPERATOR,
  PROP_INFER_TYPE,
  PROP_NUM_CALLBACKS
};
enum { OP_DELETE, OP_FORWARD, OP_BACKWARD, OP_NUM_CALLBACKS };
/* MXNet's OpReqType and its custom-op array tags. */
enum { REQ_NULL = 0, REQ_ADD = 3 };
enum { TAG_OUTPUT = 1, TAG_IN_GRAD = 2 };

/* One node's operator properties (MXNet's "prop"): the entry and the node's attributes. */
typedef struct {
  const op_entry* entry;
  int32_t num_attrs;
  char** keys;
  char** values;
  bridge_arg* scalars; /* parsed, one per entry scalar */
  int* dependencies;   /* declare_backward_dependency's answer */
  int* out_dims;       /* infer_shape's answer: num_outputs * BRIDGE_OP_MAX_DIMS */
  mx_generic_callback callbacks[PROP_NUM_CALLBACKS];
  void* contexts[PROP_NUM_CALLBACKS];
} op_prop;

/* One created operator: what forward and backward need, copied (the prop may go first). */
typedef struct {
  const op_entry* entry;
  bridge_arg* scalars;
  int32_t num_inputs;
  int32_t* ndims;      /* per input */
  uint32_t* dims;      /* per input, BRIDGE_OP_MAX_DIMS each */
  int32_t* dtypes;     /* per input */
  mx_generic_callback callbacks[OP_NUM_CALLBACKS];
  void* contexts[OP_NUM_CALLBACKS];
} op_instance;

/* A refusal on the caller's thread inside an MXNet C API call: thrown, so MXNet reports this
 * text (API_END catches std::exception); without the thrower, MXNet's own "Check failed". */
static int refuse(const op_entry* entry, const char* what, const char* message) {
  char text[BRIDGE_ERROR_CAPACITY];
  snprintf(text, sizeof text, "bridge_cffi operator '%.100s': %s: %.700s", entry->name, what,
           message);
  if (g_mx.throw_runtime_error != NULL) g_mx.throw_runtime_error(text);
  fprintf(stderr, "%s\n", text);
  return 0;
}

/* ---- the operator's forward and backward (custom-operator worker thread) ---- */

static int instance_delete(void* state) {
  op_instance* instance = state;
  free(instance);
  return 1;
}

/* Run one direction. Arrays tagged `written_tag` are the ones it writes (outputs forward,
 * input gradients backward; a backward reads the outputs). `first_written` is the index of the first array the call writes in
 * MXNet's list (reqs are indexed from there). `use_scratch` says whether a written array MXNet does
 * not want (kNullOp) is replaced by a scratch array of the same-numbered input's shape: input
 * gradients have their input's shape; forward outputs are always allocated, so written. */
static int run_call(const op_instance* instance, const op_call* call, const char* direction,
                    int size, void** ptrs, const int* tags, const int* reqs, int written_tag,
                    int first_written, bool use_scratch) {
  const op_entry* entry = instance->entry;
  char error[BRIDGE_ERROR_CAPACITY];
  error[0] = '\0';
  int32_t status = BRIDGE_OK;
  int32_t n = call->num_slots;
  bridge_arg args[n > 0 ? n : 1];
  uint8_t written[n > 0 ? n : 1];
  void* scratch[n > 0 ? n : 1];
  memset(args, 0, sizeof args);
  memset(written, 0, sizeof written);
  for (int32_t i = 0; i < n; ++i) scratch[i] = NULL;
  if (call->kernel == NULL) {
    status = bridge_fail(error, BRIDGE_E_STATE,
                         "it has no backward (register it with bridge_cffi.differentiable's "
                         "pair to take gradients)");
  }
  for (int32_t i = 0; i < n && status == BRIDGE_OK; ++i) {
    const bridge_op_slot* slot = &call->slots[i];
    written[i] = 0;
    if (slot->is_scalar) {
      args[i] = instance->scalars[slot->index];
      continue;
    }
    if (slot->index < 0 || slot->index >= size) {
      status = bridge_fail(error, BRIDGE_E_STATE, "parameter %d names array %d of %d", (int)i,
                           (int)slot->index, size);
      break;
    }
    args[i].kind = BRIDGE_ARG_MXNET_NDARRAY; /* turned into a DLTensor* by run_now */
    args[i].value.v_ptr = ptrs[slot->index];
    if (tags[slot->index] != written_tag) continue;
    written[i] = 1;
    int req = reqs[slot->index - first_written];
    if (req == REQ_ADD) {
      status = bridge_fail(error, BRIDGE_E_VALUE,
                           "array %d is to be added to (grad_req='add'), which bridged "
                           "operators do not support yet; use grad_req='write'",
                           (int)(slot->index - first_written));
    } else if (req == REQ_NULL && use_scratch) {
      /* MXNet does not want this array (an input needing no gradient) and may not have
       * allocated it: the kernel writes a scratch array of the input's shape instead. */
      int input = slot->index - first_written;
      if (g_mx.MXNDArrayCreateEx == NULL || input < 0 || input >= instance->num_inputs) {
        status = bridge_fail(error, BRIDGE_E_STATE, "no scratch array for unwanted array %d",
                             (int)(slot->index - first_written));
      } else if (g_mx.MXNDArrayCreateEx(&instance->dims[input * BRIDGE_OP_MAX_DIMS],
                                        (uint32_t)instance->ndims[input], MX_DEV_CPU, 0, 0,
                                        instance->dtypes[input], &scratch[i]) != 0) {
        status = bridge_fail(error, BRIDGE_E_MXNET, "MXNDArrayCreateEx failed: %s",
                             g_mx.MXGetLastError());
        scratch[i] = NULL;
      } else {
        args[i].value.v_ptr = scratch[i];
      }
    }
  }
  if (status == BRIDGE_OK) {
    status = bridge_mxnet_run_now(call->kernel, args, written, n, entry->name, error);
  }
  for (int32_t i = 0; i < n; ++i) {
    if (scratch[i] != NULL) g_mx.MXNDArrayFree(scratch[i]);
  }
  /* The arrays MXNet hands a custom operator are the frontend's to free. */
  for (int i = 0; i < size; ++i) g_mx.MXNDArrayFree(ptrs[i]);
  if (status != BRIDGE_OK) {
    fprintf(stderr, "bridge_cffi operator '%.100s' %s failed: %.900s\n", entry->name, direction,
            error[0] ? error : "the kernel reported an error without a message");
    return 0;
  }
  return 1;
}

static int instance_forward(int size, void** ptrs, int* tags, const int* reqs, const int is_train,
                            void* state) {
  (void)is_train;
  const op_instance* instance = state;
  return run_call(instance, &instance->entry->forward, "forward", size, ptrs, tags, reqs,
                  TAG_OUTPUT, instance->entry->num_inputs, false);
}

static int instance_backward(int size, void** ptrs, int* tags, const int* reqs,
                             const int is_train, void* state) {
  (void)is_train;
  const op_instance* instance = state;
  const op_entry* entry = instance->entry;
  /* MXNet's backward list: output gradients, inputs, outputs, then input gradients. */
  int first_in_grad = 2 * entry->num_outputs + entry->num_inputs;
  return run_call(instance, &entry->backward, "backward", size, ptrs, tags, reqs, TAG_IN_GRAD,
                  first_in_grad, true);
}

/* ---- the node's properties (caller's thread, inside MXNet's C API) ---- */

static void prop_free(op_prop* prop) {
  if (prop == NULL) return;
  for (int32_t a = 0; a < prop->num_attrs; ++a) {
    if (prop->keys) free(prop->keys[a]);
    if (prop->values) free(prop->values[a]);
  }
  free(prop->keys);
  free(prop->values);
  free(prop->scalars);
  free(prop->dependencies);
  free(prop->out_dims);
  free(prop);
}

static int prop_delete(void* state) {
  prop_free(state);
  return 1;
}

static int prop_list_arguments(char*** out, void* state) {
  *out = ((op_prop*)state)->entry->input_names;
  return 1;
}

static int prop_list_outputs(char*** out, void* state) {
  *out = ((op_prop*)state)->entry->output_names;
  return 1;
}

static int prop_list_auxiliary_states(char*** out, void* state) {
  static char* none[1] = {NULL};
  (void)state;
  *out = none;
  return 1;
}

static int prop_infer_shape(int num_tensors, int* ndims, int** shapes, void* state) {
  op_prop* prop = state;
  const op_entry* entry = prop->entry;
  int32_t n_in = entry->num_inputs, n_out = entry->num_outputs;
  if (num_tensors != n_in + n_out) return refuse(entry, "infer_shape", "unexpected array count");
  bool known = true;
  for (int32_t i = 0; i < n_in; ++i) {
    if (ndims[i] <= 0) known = false;
    if (ndims[i] > BRIDGE_OP_MAX_DIMS) {
      return refuse(entry, "infer_shape", "an input has more dimensions than supported");
    }
  }
  if (!known || entry->infer_shape == NULL) {
    /* Not knowable yet (MXNet infers graphs in passes): leave what is unknown unknown. */
    for (int32_t i = 0; i < n_in + n_out; ++i) {
      if (ndims[i] < 0) ndims[i] = 0;
    }
    for (int32_t j = 0; j < n_out; ++j) ndims[n_in + j] = 0;
    return 1;
  }
  int32_t in_ndims[n_in > 0 ? n_in : 1];
  int64_t in_dims[(n_in > 0 ? n_in : 1) * BRIDGE_OP_MAX_DIMS];
  int32_t out_ndims[n_out > 0 ? n_out : 1];
  int64_t out_dims[(n_out > 0 ? n_out : 1) * BRIDGE_OP_MAX_DIMS];
  for (int32_t i = 0; i < n_in; ++i) {
    in_ndims[i] = ndims[i];
    for (int d = 0; d < ndims[i]; ++d) in_dims[i * BRIDGE_OP_MAX_DIMS + d] = shapes[i][d];
  }
  char error[BRIDGE_ERROR_CAPACITY];
  error[0] = '\0';
  if (entry->infer_shape(entry->context, prop->num_attrs, (const char**)prop->keys,
                         (const char**)prop->values, n_in, in_ndims, in_dims, n_out, out_ndims,
                         out_dims, error) != 0) {
    return refuse(entry, "infer_shape", error[0] ? error : "refused without a message");
  }
  for (int32_t j = 0; j < n_out; ++j) {
    if (out_ndims[j] < 0 || out_ndims[j] > BRIDGE_OP_MAX_DIMS) {
      return refuse(entry, "infer_shape", "an output's dimension count is out of range");
    }
    int* dims = &prop->out_dims[j * BRIDGE_OP_MAX_DIMS];
    for (int d = 0; d < out_ndims[j]; ++d) dims[d] = (int)out_dims[j * BRIDGE_OP_MAX_DIMS + d];
    ndims[n_in + j] = out_ndims[j];
    shapes[n_in + j] = dims;
  }
  return 1;
}

static int prop_infer_type(int num_tensors, int* types, void* state) {
  op_prop* prop = state;
  const op_entry* entry = prop->entry;
  int32_t n_in = entry->num_inputs, n_out = entry->num_outputs;
  if (num_tensors != n_in + n_out) return refuse(entry, "infer_type", "unexpected array count");
  if (entry->infer_type == NULL) return 1;
  int32_t in_types[n_in > 0 ? n_in : 1];
  int32_t out_types[n_out > 0 ? n_out : 1];
  for (int32_t i = 0; i < n_in; ++i) in_types[i] = types[i];
  for (int32_t j = 0; j < n_out; ++j) out_types[j] = types[n_in + j];
  char error[BRIDGE_ERROR_CAPACITY];
  error[0] = '\0';
  if (entry->infer_type(entry->context, prop->num_attrs, (const char**)prop->keys,
                        (const char**)prop->values, n_in, in_types, n_out, out_types,
                        error) != 0) {
    return refuse(entry, "infer_type", error[0] ? error : "refused without a message");
  }
  for (int32_t i = 0; i < n_in; ++i) types[i] = in_types[i];
  for (int32_t j = 0; j < n_out; ++j) types[n_in + j] = out_types[j];
  return 1;
}

static int prop_declare_backward_dependency(const int* out_grad, const int* in_data,
                                            const int* out_data, int* num_deps, int** deps,
                                            void* state) {
  op_prop* prop = state;
  const op_entry* entry = prop->entry;
  for (int32_t k = 0; k < entry->num_dependencies; ++k) {
    const bridge_op_dependency* dependency = &entry->dependencies[k];
    const int* group = dependency->group == 0 ? out_grad : dependency->group == 1 ? in_data
                                                                                   : out_data;
    prop->dependencies[k] = group[dependency->index];
  }
  *num_deps = entry->num_dependencies;
  *deps = prop->dependencies;
  return 1;
}

static int prop_create_operator(const char* context, int num_inputs, unsigned** shapes,
                                const int* ndims, const int* dtypes, mx_callback_list* ret,
                                void* state) {
  op_prop* prop = state;
  const op_entry* entry = prop->entry;
  if (strncmp(context, "cpu", 3) != 0) {
    char message[160];
    snprintf(message, sizeof message,
             "runs on CPU contexts only (its forward runs on MXNet's custom-operator worker, "
             "which has no device stream); got %.40s",
             context);
    return refuse(entry, "create_operator", message);
  }
  size_t n = (size_t)(num_inputs > 0 ? num_inputs : 1);
  size_t scalars = (size_t)(entry->num_scalars > 0 ? entry->num_scalars : 1);
  op_instance* instance =
      calloc(1, sizeof(op_instance) + scalars * sizeof(bridge_arg) +
                    n * (2 * sizeof(int32_t) + BRIDGE_OP_MAX_DIMS * sizeof(uint32_t)));
  if (instance == NULL) return refuse(entry, "create_operator", "out of memory");
  char* cursor = (char*)(instance + 1);
  instance->scalars = (bridge_arg*)cursor;
  cursor += scalars * sizeof(bridge_arg);
  instance->dims = (uint32_t*)cursor;
  cursor += n * BRIDGE_OP_MAX_DIMS * sizeof(uint32_t);
  instance->ndims = (int32_t*)cursor;
  cursor += n * sizeof(int32_t);
  instance->dtypes = (int32_t*)cursor;
  instance->entry = entry;
  instance->num_inputs = num_inputs;
  if (entry->num_scalars > 0) {
    memcpy(instance->scalars, prop->scalars, (size_t)entry->num_scalars * sizeof(bridge_arg));
  }
  for (int i = 0; i < num_inputs; ++i) {
    int ndim = ndims[i] < 0 ? 0 : ndims[i] > BRIDGE_OP_MAX_DIMS ? BRIDGE_OP_MAX_DIMS : ndims[i];
    instance->ndims[i] = ndim;
    instance->dtypes[i] = dtypes[i];
    for (int d = 0; d < ndim; ++d) instance->dims[i * BRIDGE_OP_MAX_DIMS + d] = shapes[i][d];
  }
  mx_generic_callback callbacks[OP_NUM_CALLBACKS];
  int (*deleter)(void*) = instance_delete;
  int (*forward)(int, void**, int*, const int*, const int, void*) = instance_forward;
  int (*backward)(int, void**, int*, const int*, const int, void*) = instance_backward;
  /* MXNet stores every callback as int(*)(void) and casts it back to its real type. */
  memcpy(&callbacks[OP_DELETE], &deleter, sizeof deleter);
  memcpy(&callbacks[OP_FORWARD], &forward, sizeof forward);
  memcpy(&callbacks[OP_BACKWARD], &backward, sizeof backward);
  for (int k = 0; k < OP_NUM_CALLBACKS; ++k) {
    instance->callbacks[k] = callbacks[k];
    instance->contexts[k] = instance;
  }
  ret->num_callbacks = OP_NUM_CALLBACKS;
  ret->callbacks = instance->callbacks;
  ret->contexts = instance->contexts;
  return 1;
}

/* What a node holds until its properties are in place: MXNet calls the delete callback of
 * the creator's list when it drops the node, also when the creator throws. */
typedef struct {
  mx_generic_callback callbacks[1];
  void* contexts[1];
} refused_list;

static int refused_delete(void* state) {
  free(state);
  return 1;
}

static int op_creator(const char* op_type, const int num_kwargs, const char** keys,
                      const char** values, mx_callback_list* ret) {
  refused_list* placeholder = calloc(1, sizeof(refused_list));
  if (placeholder == NULL) return 0;
  int (*deleter_of_placeholder)(void*) = refused_delete;
  memcpy(&placeholder->callbacks[0], &deleter_of_placeholder, sizeof deleter_of_placeholder);
  placeholder->contexts[0] = placeholder;
  ret->num_callbacks = 1;
  ret->callbacks = placeholder->callbacks;
  ret->contexts = placeholder->contexts;
  op_entry* entry = bridge_op_find(op_type);
  if (entry == NULL) return 0; /* only names this file registered reach this creator */
  op_prop* prop = calloc(1, sizeof(op_prop));
  if (prop == NULL) return refuse(entry, "attributes", "out of memory");
  prop->entry = entry;
  prop->num_attrs = num_kwargs;
  prop->keys = calloc((size_t)num_kwargs + 1, sizeof(char*));
  prop->values = calloc((size_t)num_kwargs + 1, sizeof(char*));
  prop->scalars = calloc((size_t)entry->num_scalars + 1, sizeof(bridge_arg));
  prop->dependencies = calloc((size_t)entry->num_dependencies + 1, sizeof(int));
  prop->out_dims = calloc((size_t)entry->num_outputs * BRIDGE_OP_MAX_DIMS + 1, sizeof(int));
  bool complete = prop->keys && prop->values && prop->scalars && prop->dependencies &&
                  prop->out_dims;
  for (int a = 0; complete && a < num_kwargs; ++a) {
    prop->keys[a] = bridge_copy_string(keys[a]);
    prop->values[a] = bridge_copy_string(values[a]);
    complete = prop->keys[a] && prop->values[a];
  }
  if (!complete) {
    prop_free(prop);
    return refuse(entry, "attributes", "out of memory");
  }
  char error[BRIDGE_ERROR_CAPACITY];
  if (!bridge_op_parse_attributes(entry, prop->num_attrs, (const char* const*)prop->keys,
                                  (const char* const*)prop->values, prop->scalars, error)) {
    prop_free(prop);
    return refuse(entry, "attributes", error);
  }
  int (*deleter)(void*) = prop_delete;
  int (*list_arguments)(char***, void*) = prop_list_arguments;
  int (*list_outputs)(char***, void*) = prop_list_outputs;
  int (*list_auxiliary)(char***, void*) = prop_list_auxiliary_states;
  int (*infer_shape)(int, int*, int**, void*) = prop_infer_shape;
  int (*dependencies)(const int*, const int*, const int*, int*, int**, void*) =
      prop_declare_backward_dependency;
  int (*create)(const char*, int, unsigned**, const int*, const int*, mx_callback_list*, void*) =
      prop_create_operator;
  int (*infer_type)(int, int*, void*) = prop_infer_type;
  memcpy(&prop->callbacks[PROP_DELETE], &deleter, sizeof deleter);
  memcpy(&prop->callbacks[PROP_LIST_ARGUMENTS], &list_arguments, sizeof list_arguments);
  memcpy(&prop->callbacks[PROP_LIST_OUTPUTS], &list_outputs, sizeof list_outputs);
  memcpy(&prop->callbacks[PROP_LIST_AUXILIARY_STATES], &list_auxiliary, sizeof list_auxiliary);
  memcpy(&prop->callbacks[PROP_INFER_SHAPE], &infer_shape, sizeof infer_shape);
  memcpy(&prop->callbacks[PROP_DECLARE_BACKWARD_DEPENDENCY], &dependencies, sizeof dependencies);
  memcpy(&prop->callbacks[PROP_CREATE_OPERATOR], &create, sizeof create);
  memcpy(&prop->callbacks[PROP_INFER_TYPE], &infer_type, sizeof infer_type);
  for (int k = 0; k < PROP_NUM_CALLBACKS; ++k) prop->contexts[k] = prop;
  free(placeholder);
  ret->num_callbacks = PROP_NUM_CALLBACKS;
  ret->callbacks = prop->callbacks;
  ret->contexts = prop->contexts;
  return 1;
}


/* ---- exposure ---- */

int32_t bridge_custom_op_expose(op_entry* entry, char* error) {
  int (*creator)(const char*, const int, const char**, const char**, mx_callback_list*) =
      op_creator;
  void* address;
  memcpy(&address, &creator, sizeof creator);
  if (g_mx.MXCustomOpRegister(entry->name, address) != 0) {
    return bridge_fail(error, BRIDGE_E_MXNET, "MXCustomOpRegister failed: %s",
                       g_mx.MXGetLastError());
  }
  return BRIDGE_OK;
}
