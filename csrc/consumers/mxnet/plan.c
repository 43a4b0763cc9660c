/*
 * The per-call plan and its checks, on the caller's thread, before anything is pushed.
 *
 * The entry the Python wrapper calls once per bridged call. What does not change between
 * calls (kernel, const_loc, priority, name) is planned once into a bridge_call_plan; a call
 * then passes only its arguments: bridge_arg records packed by Python's struct module into one
 * bytes object (zero-copy through cffi), with its length, so C never reads past what Python
 * wrote. Errors go to a thread-local buffer, so a successful call allocates
 * nothing beyond that bytes object.
 *
 * A plan may carry a signature: what a kernel declares about its parameters
 * (bridge_param_spec, read from TVM's embedded signature by the Python side). A call is then
 * checked against it (bridge_signature_check): the arity, each argument's kind, each array's
 * dtype (as the consumer already read it) and shape, and symbolic extents agreeing across
 * arguments. Messages name the position, the parameter and what was given.
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
  /* Checked before the records are copied onto the stack below; the push does not check
   * the count again. (A size_t count of 16-byte records fits an int64_t.) */
  size_t count = packed_size / sizeof(bridge_arg);
  int32_t counted = bridge_check_arg_count((int64_t)count, t_last_error);
  if (counted != BRIDGE_OK) return counted;
  const int32_t num_args = (int32_t)count;
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

/* ---- checks against a signature ---- */

/* "(30,)" or "(5, 20)" into out. */
static void shape_text(const uint32_t* dims, uint32_t ndim, char* out, size_t capacity) {
  size_t used = (size_t)snprintf(out, capacity, "(");
  for (uint32_t d = 0; d < ndim && used + 24 < capacity; ++d) {
    used += (size_t)snprintf(out + used, capacity - used, "%s%u", d ? ", " : "", dims[d]);
  }
  snprintf(out + used, capacity - used, "%s)", ndim == 1 ? "," : "");
}

/* The argument kind names users know. */
static const char* given_kind(int32_t kind) {
  switch (kind) {
    case BRIDGE_ARG_MXNET_NDARRAY: return "an array";
    case BRIDGE_ARG_INT: return "an int";
    case BRIDGE_ARG_FLOAT: return "a float";
    case BRIDGE_ARG_BOOL: return "a bool";
    default: return "a value of another kind";
  }
}

int32_t bridge_signature_check(const bridge_signature* signature, const bridge_arg* args,
                               const int* dtypes, int32_t num_args, char* error) {
  if (num_args != signature->num_specs) {
    return bridge_fail(error, BRIDGE_E_TYPE, "%s takes %d arguments, got %d",
                       signature->function, (int)signature->num_specs, (int)num_args);
  }
  /* Symbolic extents bound so far: value and the position that bound it. */
  enum { MAX_SYMBOLS = 64 };
  int64_t bound[MAX_SYMBOLS];
  int32_t bound_by[MAX_SYMBOLS];
  for (int k = 0; k < MAX_SYMBOLS; ++k) bound_by[k] = -1;
  for (int32_t i = 0; i < num_args; ++i) {
    const bridge_param_spec* spec = &signature->specs[i];
    int32_t kind = args[i].kind;
    if (spec->kind == BRIDGE_SPEC_UNCHECKED) continue;
    if (spec->kind != BRIDGE_ARG_TENSOR) {
      bool fits = kind == BRIDGE_ARG_INT || kind == BRIDGE_ARG_BOOL ||
                  (kind == BRIDGE_ARG_FLOAT && spec->kind == BRIDGE_ARG_FLOAT);
      if (fits) continue;
      if (kind == BRIDGE_ARG_FLOAT) {
        return bridge_fail(error, BRIDGE_E_TYPE,
                           "argument %d (%s) is the float %g, the kernel expects %s",
                           (int)i, spec->name, args[i].value.v_float64, spec->type);
      }
      return bridge_fail(error, BRIDGE_E_TYPE,
                         "argument %d (%s) is %s, the kernel expects a %s scalar", (int)i,
                         spec->name, given_kind(kind), spec->type);
    }
    if (kind != BRIDGE_ARG_MXNET_NDARRAY) {
      return bridge_fail(error, BRIDGE_E_TYPE,
                         "argument %d (%s) is %s, the kernel expects an array %s", (int)i,
                         spec->name, given_kind(kind), spec->type);
    }
    void* handle = args[i].value.v_ptr;
    int dtype = dtypes[i];
    if (spec->mx_dtype >= 0 && dtype != spec->mx_dtype) {
      const char* held = mx_dtype_name(dtype) ? mx_dtype_name(dtype) : "an unknown dtype";
      return bridge_fail(error, BRIDGE_E_TYPE, "argument %d (%s) holds %s, the kernel expects %s",
                         (int)i, spec->name, held, spec->type);
    }
    uint32_t ndim = 0;
    const uint32_t* dims = NULL;
    if (spec->ndim < 0 || g_mx.MXNDArrayGetShape == NULL ||
        g_mx.MXNDArrayGetShape(handle, &ndim, &dims) != 0) {
      continue;
    }
    char shown[96];
    bool ok = (int32_t)ndim == spec->ndim;
    int32_t conflict = -1;
    for (int32_t d = 0; ok && d < spec->ndim; ++d) {
      int64_t want = spec->dims[d];
      if (want >= 0) {
        ok = (int64_t)dims[d] == want;
      } else if (-1 - want < MAX_SYMBOLS) {
        int k = (int)(-1 - want);
        if (bound_by[k] < 0) {
          bound[k] = dims[d];
          bound_by[k] = i;
        } else if (bound[k] != (int64_t)dims[d]) {
          ok = false;
          conflict = k;
        }
      }
    }
    if (!ok) {
      shape_text(dims, ndim, shown, sizeof shown);
      if (conflict >= 0) {
        return bridge_fail(error, BRIDGE_E_VALUE,
                           "argument %d (%s) has shape %s, the kernel expects %s, whose "
                           "symbolic extent argument %d set to %lld",
                           (int)i, spec->name, shown, spec->type, (int)bound_by[conflict],
                           (long long)bound[conflict]);
      }
      return bridge_fail(error, BRIDGE_E_VALUE,
                         "argument %d (%s) has shape %s, the kernel expects %s", (int)i,
                         spec->name, shown, spec->type);
    }
  }
  return BRIDGE_OK;
}


