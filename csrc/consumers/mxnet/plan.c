/*
 * The entry the Python wrapper calls once per bridged call. What does not change between
 * calls (kernel, const_loc, priority, name) is planned once into a bridge_call_plan; a call
 * then passes only its arguments: bridge_arg records packed by Python's struct module into one
 * bytes object (zero-copy through cffi), with its length, so C never reads past what Python
 * wrote. Errors go to a thread-local buffer, so a successful call allocates
 * nothing beyond that bytes object.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/bridge_internal.h"

struct bridge_call_plan {
  bridge_kernel* kernel; /* one reference, owned */
  int32_t num_const_flags;
  int32_t priority;
  char* name;
  uint8_t* const_flags;
  bridge_param_spec* specs; /* owned; NULL: the kernel checks its own arguments */
  int32_t num_specs;
  char function[64];
};

static _Thread_local char t_last_error[BRIDGE_ERROR_CAPACITY];

const char* bridge_last_error(void) { return t_last_error; }

int32_t bridge_call_plan_new(bridge_kernel* kernel, const char* const_flags,
                             int32_t num_const_flags, int32_t priority, const char* name,
                             bridge_call_plan** out, char* error) {
  if (kernel == NULL) return bridge_fail(error, BRIDGE_E_VALUE, "kernel is NULL");
  if (num_const_flags < 0) num_const_flags = 0;
  const char* shown = name ? name : bridge_kernel_shown_name(kernel);
  size_t name_size = strlen(shown) + 1;
  bridge_call_plan* plan = calloc(1, sizeof *plan + name_size + (size_t)num_const_flags);
  if (plan == NULL) return bridge_fail(error, BRIDGE_E_MEMORY, "out of memory for a call plan");
  plan->name = (char*)(plan + 1);
  memcpy(plan->name, shown, name_size);
  plan->const_flags = (uint8_t*)plan->name + name_size;
  if (num_const_flags > 0) memcpy(plan->const_flags, const_flags, (size_t)num_const_flags);
  plan->num_const_flags = num_const_flags;
  plan->priority = priority;
  kernel->retain(kernel);
  plan->kernel = kernel;
  *out = plan;
  return BRIDGE_OK;
}

void bridge_call_plan_free(bridge_call_plan* plan) {
  if (plan == NULL) return;
  plan->kernel->release(plan->kernel);
  free(plan->specs);
  free(plan);
}

int32_t bridge_call_plan_set_signature(bridge_call_plan* plan, const bridge_param_spec* specs,
                                       int32_t num_specs, const char* function, char* error) {
  if (num_specs < 0 || num_specs > BRIDGE_MAX_CALL_ARGS) {
    return bridge_fail(error, BRIDGE_E_VALUE, "a signature has 0 to %d parameters, got %d",
                       BRIDGE_MAX_CALL_ARGS, (int)num_specs);
  }
  bridge_param_spec* copy = malloc(sizeof *copy * (size_t)(num_specs > 0 ? num_specs : 1));
  if (copy == NULL) return bridge_fail(error, BRIDGE_E_MEMORY, "out of memory for a signature");
  if (num_specs > 0) memcpy(copy, specs, sizeof *copy * (size_t)num_specs);
  for (int32_t i = 0; i < num_specs; ++i) {
    copy[i].name[sizeof copy[i].name - 1] = '\0';
    copy[i].type[sizeof copy[i].type - 1] = '\0';
    if (copy[i].ndim > BRIDGE_SPEC_MAX_DIMS) copy[i].ndim = -1;
  }
  free(plan->specs);
  plan->specs = copy;
  plan->num_specs = num_specs;
  snprintf(plan->function, sizeof plan->function, "%s", function ? function : plan->name);
  return BRIDGE_OK;
}

static const char* scalar_kind_name(int32_t kind) {
  switch (kind) {
    case BRIDGE_ARG_INT: return "int";
    case BRIDGE_ARG_FLOAT: return "float";
    case BRIDGE_ARG_BOOL: return "bool";
    default: return "non-array value";
  }
}

int32_t bridge_call(const bridge_call_plan* plan, const char* packed, size_t packed_size) {
  if (bridge_recorded_error_pending() && bridge_take_recorded_error(t_last_error)) {
    return BRIDGE_E_RECORDED;
  }
  /* Checked before any record is read, so C never reads past what the caller wrote. */
  if (packed_size % sizeof(bridge_arg) != 0 || (packed == NULL && packed_size != 0)) {
    return bridge_fail(t_last_error, BRIDGE_E_VALUE,
                       "packed arguments are whole %zu-byte bridge_arg records, got %zu bytes",
                       sizeof(bridge_arg), packed_size);
  }
  if (packed_size / sizeof(bridge_arg) > BRIDGE_MAX_CALL_ARGS) {
    return bridge_fail(t_last_error, BRIDGE_E_VALUE, "a call takes 0 to %d arguments, got %zu",
                       BRIDGE_MAX_CALL_ARGS, packed_size / sizeof(bridge_arg));
  }
  const int32_t num_args = (int32_t)(packed_size / sizeof(bridge_arg));
  for (int32_t position = num_args; position < plan->num_const_flags; ++position) {
    if (plan->const_flags[position]) {
      return bridge_fail(t_last_error, BRIDGE_E_VALUE,
                         "const_loc: position %d out of range for a call with %d arguments",
                         (int)position, (int)num_args);
    }
  }
  bridge_arg args[num_args > 0 ? num_args : 1];
  uint8_t written[num_args > 0 ? num_args : 1];
  /* A bytes object's buffer need not be aligned for bridge_arg: copy rather than cast. */
  if (num_args > 0) memcpy(args, packed, packed_size);
  for (int32_t i = 0; i < num_args; ++i) {
    int32_t kind = args[i].kind;
    args[i].reserved = 0;
    bool is_const = i < plan->num_const_flags && plan->const_flags[i];
    if (kind == BRIDGE_ARG_MXNET_NDARRAY) {
      written[i] = !is_const;
      continue;
    }
    if (kind != BRIDGE_ARG_INT && kind != BRIDGE_ARG_FLOAT && kind != BRIDGE_ARG_BOOL) {
      /* Python sends only these; a DLTensor* (BRIDGE_ARG_TENSOR) names no engine variable. */
      return bridge_fail(t_last_error, BRIDGE_E_TYPE,
                         "argument %d has kind %d, which a packed call does not carry", (int)i,
                         (int)kind);
    }
    if (is_const) {
      return bridge_fail(t_last_error, BRIDGE_E_VALUE,
                         "const_loc: argument %d is a %s, but const_loc may only name array "
                         "arguments",
                         (int)i, scalar_kind_name(kind));
    }
    written[i] = 0;
  }
  const bridge_signature signature = {plan->specs, plan->num_specs, plan->function};
  return bridge_mxnet_push_checked(plan->kernel, args, written, num_args, plan->priority,
                                   plan->name, plan->specs ? &signature : NULL, t_last_error);
}
