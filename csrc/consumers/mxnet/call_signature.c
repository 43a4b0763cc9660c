/*
 * Checks a call against what a kernel declares about its parameters (bridge_param_spec, read
 * from TVM's embedded signature by the Python side), before anything is pushed: the arity,
 * each argument's kind, each array's dtype (as the consumer already read it) and shape, and
 * symbolic extents agreeing across arguments. Messages name the position, the parameter and
 * what was given.
 */
#include <stdio.h>
#include <string.h>

#include "runtime/bridge_internal.h"

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


