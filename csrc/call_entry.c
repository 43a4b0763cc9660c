/*
 * The entry the Python wrapper calls once per bridged call. What does not change between
 * calls (kernel, const_loc, priority, name) is planned once into a bridge_call_plan; a call
 * then passes only its arguments, packed by Python's struct module into one bytes object
 * (zero-copy through cffi). Errors go to a thread-local buffer, so a successful call allocates
 * nothing beyond that bytes object.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge_internal.h"

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

/* Set on a packed kind when its payload bytes are an int64 rather than a double. */
#define BRIDGE_PAYLOAD_IS_INT64 (1 << 8)

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

int32_t bridge_call(const bridge_call_plan* plan, int32_t num_args, const char* packed) {
  if (bridge_recorded_error_pending() && bridge_take_recorded_error(t_last_error)) {
    return BRIDGE_E_RECORDED;
  }
  if (num_args < 0 || num_args > BRIDGE_MAX_CALL_ARGS) {
    return bridge_fail(t_last_error, BRIDGE_E_VALUE, "a call takes 0 to %d arguments, got %d",
                       BRIDGE_MAX_CALL_ARGS, (int)num_args);
  }
  for (int32_t position = num_args; position < plan->num_const_flags; ++position) {
    if (plan->const_flags[position]) {
      return bridge_fail(t_last_error, BRIDGE_E_VALUE,
                         "const_loc: position %d out of range for a call with %d arguments",
                         (int)position, (int)num_args);
    }
  }
  bridge_arg args[num_args > 0 ? num_args : 1];
  uint8_t written[num_args > 0 ? num_args : 1];
  for (int32_t i = 0; i < num_args; ++i) {
    int64_t tagged_kind;
    memcpy(&tagged_kind, packed + 16 * i, sizeof tagged_kind);
    int32_t kind = (int32_t)(tagged_kind & 0xff);
    args[i].kind = kind;
    args[i].reserved = 0;
    if (tagged_kind & BRIDGE_PAYLOAD_IS_INT64) {
      memcpy(&args[i].value.v_int64, packed + 16 * i + 8, 8);
    } else {
      double payload;
      memcpy(&payload, packed + 16 * i + 8, sizeof payload);
      switch (kind) {
        case BRIDGE_ARG_FLOAT: args[i].value.v_float64 = payload; break;
        case BRIDGE_ARG_TENSOR: args[i].value.v_ptr = (void*)(uintptr_t)payload; break;
        default: args[i].value.v_int64 = (int64_t)payload; break;
      }
    }
    bool is_const = i < plan->num_const_flags && plan->const_flags[i];
    if (kind == BRIDGE_ARG_TENSOR) {
      written[i] = !is_const;
    } else if (is_const) {
      return bridge_fail(t_last_error, BRIDGE_E_VALUE,
                         "const_loc: argument %d is a %s, but const_loc may only name array "
                         "arguments",
                         (int)i, scalar_kind_name(kind));
    } else {
      written[i] = 0;
    }
  }
  const bridge_signature signature = {plan->specs, plan->num_specs, plan->function};
  return bridge_mxnet_push_checked(plan->kernel, args, written, num_args, plan->priority,
                                   plan->name, plan->specs ? &signature : NULL, t_last_error);
}
