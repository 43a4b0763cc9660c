/*
 * The entry the Python wrapper calls once per bridged call. It takes the arguments in the
 * cheapest shape to build from Python (one flat int64 list of kind/value pairs, doubles apart)
 * and keeps its error message in a thread-local buffer, so a successful call allocates nothing
 * on the Python side beyond the argument list.
 */
#include <stdio.h>
#include <string.h>

#include "bridge_internal.h"

static _Thread_local char t_last_error[BRIDGE_ERROR_CAPACITY];

const char* bridge_last_error(void) { return t_last_error; }

int32_t bridge_mxnet_call(bridge_kernel* kernel, int32_t num_args, const int64_t* kinds_and_values,
                          const double* floats, const char* const_flags, int32_t num_const_flags,
                          int32_t priority, const char* name) {
  if (bridge_recorded_error_pending() && bridge_take_recorded_error(t_last_error)) {
    return BRIDGE_E_RECORDED;
  }
  if (num_args < 0 || num_args > BRIDGE_MAX_CALL_ARGS) {
    return bridge_fail(t_last_error, BRIDGE_E_VALUE, "a call takes 0 to %d arguments, got %d",
                       BRIDGE_MAX_CALL_ARGS, (int)num_args);
  }
  bridge_arg args[num_args > 0 ? num_args : 1];
  uint8_t written[num_args > 0 ? num_args : 1];
  for (int32_t i = 0; i < num_args; ++i) {
    int32_t kind = (int32_t)kinds_and_values[2 * i];
    int64_t value = kinds_and_values[2 * i + 1];
    args[i].kind = kind;
    args[i].reserved = 0;
    written[i] = 0;
    switch (kind) {
      case BRIDGE_ARG_TENSOR:
        args[i].value.v_ptr = (void*)(intptr_t)value;
        written[i] = !(i < num_const_flags && const_flags[i]);
        break;
      case BRIDGE_ARG_FLOAT:
        if (floats == NULL) {
          return bridge_fail(t_last_error, BRIDGE_E_VALUE, "argument %d: float without a value",
                             (int)i);
        }
        args[i].value.v_float64 = floats[i];
        break;
      default:
        args[i].value.v_int64 = value;
        break;
    }
  }
  return bridge_mxnet_push(kernel, args, written, num_args, priority, name, t_last_error);
}
