/*
 * The direct consumer: one synchronous call of any protocol kernel on DLTensors the caller
 * already has (numpy, tvm_ffi tensors, MXNet arrays after a wait), on the calling thread. No
 * MXNet, no engine, no Python: it needs protocol.h and libc only, and proves that a kernel is
 * driven through the header alone (the engine consumer, consumers/mxnet/, is the other one).
 *
 * What it guarantees the kernel (protocol.h, invoke): every tensor on one CPU device; strides
 * NULL (compact tensors only); bool as {kDLBool, 8, 1}; for a kernel with
 * BRIDGE_KERNEL_ACCEPTS_BYTE_OFFSET, data aligned down to BRIDGE_DIRECT_ALIGNMENT and the rest
 * in byte_offset; for one without it, byte_offset 0 and data BRIDGE_DIRECT_ALIGNMENT-aligned,
 * a misaligned tensor going through an aligned copy (copied back after a successful call when
 * written). The caller's DLTensor structs are never modified: the kernel sees copies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/bridge_internal.h"

/* Tensor copies for this many arguments live on the stack; more are malloc'ed. */
enum { DIRECT_STACK_ARGS = 8 };

typedef struct {
  DLTensor tensor;   /* what the kernel gets */
  void* staged;      /* aligned copy (aligned_alloc), or NULL */
  void* source;      /* where the elements of a staged tensor live in the caller's memory */
  size_t bytes;      /* size of the elements */
} direct_tensor;

static size_t element_bytes(DLDataType dtype) {
  return ((size_t)dtype.bits * dtype.lanes + 7) / 8;
}

/* Validate args[i]'s tensor and fill `out` with the kernel's copy (not yet staged). */
static int32_t prepare_tensor(const DLTensor* given, int32_t i, direct_tensor* out, char* error) {
  if (given == NULL) {
    return bridge_fail(error, BRIDGE_E_VALUE, "argument #%d: the tensor is NULL", (int)i);
  }
  if (given->device.device_type != kDLCPU) {
    return bridge_fail(error, BRIDGE_E_VALUE,
                       "argument #%d: device type %d is not the CPU (kDLCPU = 1); the direct "
                       "consumer runs CPU tensors only",
                       (int)i, (int)given->device.device_type);
  }
  if (given->ndim < 0 || (given->ndim > 0 && given->shape == NULL)) {
    return bridge_fail(error, BRIDGE_E_VALUE, "argument #%d: ndim %d with %s shape", (int)i,
                       (int)given->ndim, given->shape == NULL ? "a NULL" : "a");
  }
  if (given->dtype.bits == 0 || given->dtype.lanes == 0) {
    return bridge_fail(error, BRIDGE_E_TYPE, "argument #%d: dtype with %u bits and %u lanes",
                       (int)i, (unsigned)given->dtype.bits, (unsigned)given->dtype.lanes);
  }
  size_t count = 1;
  for (int32_t d = 0; d < given->ndim; ++d) {
    if (given->shape[d] < 0) {
      return bridge_fail(error, BRIDGE_E_VALUE, "argument #%d: extent %d is %lld", (int)i,
                         (int)d, (long long)given->shape[d]);
    }
    count *= (size_t)given->shape[d];
  }
  if (given->strides != NULL && count > 0) {
    int64_t expected = 1;
    for (int32_t d = given->ndim - 1; d >= 0; --d) {
      if (given->shape[d] != 1 && given->strides[d] != expected) {
        return bridge_fail(error, BRIDGE_E_VALUE,
                           "argument #%d: not compact (stride %lld of dimension %d, expected "
                           "%lld); pass a contiguous array",
                           (int)i, (long long)given->strides[d], (int)d, (long long)expected);
      }
      expected *= given->shape[d];
    }
  }
  out->tensor = *given;
  out->tensor.strides = NULL;
  out->staged = NULL;
  out->bytes = count * element_bytes(given->dtype);
  /* MXNet exports its bool as {kDLUInt, 1, 1}; protocol.h promises DLPack bool. */
  if (given->dtype.code == kDLUInt && given->dtype.bits == 1 && given->dtype.lanes == 1) {
    out->tensor.dtype.code = kDLBool;
    out->tensor.dtype.bits = 8;
  }
  uintptr_t address = (uintptr_t)given->data + (uintptr_t)given->byte_offset;
  if (count > 0 && address % element_bytes(out->tensor.dtype) != 0) {
    return bridge_fail(error, BRIDGE_E_VALUE,
                       "argument #%d: the elements' address is not a multiple of the element "
                       "size (%zu bytes)",
                       (int)i, element_bytes(out->tensor.dtype));
  }
  return BRIDGE_OK;
}

/* Align the kernel's view (accepts_byte_offset) or stage it through an aligned copy. */
static int32_t place_tensor(direct_tensor* t, bool accepts_byte_offset, int32_t i, char* error) {
  uintptr_t address = (uintptr_t)t->tensor.data + (uintptr_t)t->tensor.byte_offset;
  uintptr_t aligned = address & ~(uintptr_t)(BRIDGE_DIRECT_ALIGNMENT - 1);
  if (accepts_byte_offset) {
    t->tensor.data = (void*)aligned;
    t->tensor.byte_offset = address - aligned;
    return BRIDGE_OK;
  }
  t->tensor.data = (void*)address;
  t->tensor.byte_offset = 0;
  if (address == aligned || t->bytes == 0) return BRIDGE_OK;
  size_t rounded = (t->bytes + BRIDGE_DIRECT_ALIGNMENT - 1) & ~(size_t)(BRIDGE_DIRECT_ALIGNMENT - 1);
  t->staged = aligned_alloc(BRIDGE_DIRECT_ALIGNMENT, rounded);
  if (t->staged == NULL) {
    return bridge_fail(error, BRIDGE_E_MEMORY,
                       "argument #%d: out of memory staging %zu bytes through an aligned copy",
                       (int)i, t->bytes);
  }
  memcpy(t->staged, (void*)address, t->bytes);
  t->source = (void*)address;
  t->tensor.data = t->staged;
  atomic_fetch_add(&g_views_staged, 1);
  return BRIDGE_OK;
}

static void unstage(direct_tensor* tensors, int32_t count, const uint8_t* written, bool copy_back) {
  for (int32_t i = 0; i < count; ++i) {
    if (tensors[i].staged == NULL) continue;
    if (copy_back && written[i]) memcpy(tensors[i].source, tensors[i].staged, tensors[i].bytes);
    free(tensors[i].staged);
    tensors[i].staged = NULL;
  }
}

/* Validate, place and invoke; `tensors` has num_args slots, `call` is the kernel's args. */
static int32_t run_direct(bridge_kernel* kernel, const bridge_arg* args, const uint8_t* written,
                          int32_t num_args, direct_tensor* tensors, bridge_arg* call,
                          char* error) {
  bool accepts_byte_offset = bridge_kernel_accepts_byte_offset(kernel) != 0;
  DLDevice device = {kDLCPU, 0};
  int32_t first_tensor = -1;
  for (int32_t i = 0; i < num_args; ++i) {
    call[i] = args[i];
    call[i].reserved = 0;
    tensors[i].staged = NULL;
    if (args[i].kind == BRIDGE_ARG_INT || args[i].kind == BRIDGE_ARG_FLOAT ||
        args[i].kind == BRIDGE_ARG_OPAQUE) {
      continue;
    }
    if (args[i].kind == BRIDGE_ARG_BOOL) {
      call[i].value.v_int64 = args[i].value.v_int64 != 0;
      continue;
    }
    if (args[i].kind != BRIDGE_ARG_TENSOR) {
      return bridge_fail(error, BRIDGE_E_TYPE, "argument #%d: unknown argument kind %d", (int)i,
                         (int)args[i].kind);
    }
    int32_t status = prepare_tensor(args[i].value.v_tensor, i, &tensors[i], error);
    if (status != BRIDGE_OK) return status;
    DLDevice here = tensors[i].tensor.device;
    if (first_tensor < 0) {
      first_tensor = i;
      device = here;
    } else if (here.device_id != device.device_id) {
      return bridge_fail(error, BRIDGE_E_VALUE,
                         "argument #%d is on cpu(%d) but argument #%d on cpu(%d): one call runs "
                         "on one device",
                         (int)i, (int)here.device_id, (int)first_tensor, (int)device.device_id);
    }
  }
  for (int32_t i = 0; i < num_args; ++i) {
    if (args[i].kind != BRIDGE_ARG_TENSOR) continue;
    int32_t status = place_tensor(&tensors[i], accepts_byte_offset, i, error);
    if (status != BRIDGE_OK) {
      unstage(tensors, i, written, false);
      return status;
    }
    call[i].value.v_tensor = &tensors[i].tensor;
  }
  error[0] = '\0';
  int32_t status = kernel->invoke(kernel, call, num_args, device, NULL, error);
  unstage(tensors, num_args, written, status == 0);
  if (status == 0) return BRIDGE_OK;
  error[BRIDGE_ERROR_CAPACITY - 1] = '\0'; /* a kernel's message need not end */
  for (char* c = error; *c; ++c) {
    if (*c == '\n') *c = ' ';
  }
  char message[BRIDGE_ERROR_CAPACITY];
  snprintf(message, sizeof message, "%.100s failed: %.900s", bridge_kernel_shown_name(kernel),
           error[0] ? error : "the kernel reported an error without a message");
  memcpy(error, message, sizeof message);
  return BRIDGE_E_KERNEL;
}

int32_t bridge_direct_call(bridge_kernel* kernel, const bridge_arg* args, const uint8_t* written,
                           int32_t num_args, char* error) {
  int32_t status = bridge_kernel_check(kernel, error);
  if (status != BRIDGE_OK) return status;
  if (num_args < 0 || num_args > BRIDGE_MAX_CALL_ARGS || (num_args > 0 && args == NULL) ||
      (num_args > 0 && written == NULL)) {
    return bridge_fail(error, BRIDGE_E_VALUE, "%d arguments (at most %d, args and written set)",
                       (int)num_args, BRIDGE_MAX_CALL_ARGS);
  }
  if (kernel->num_args >= 0 && kernel->num_args != num_args) {
    return bridge_fail(error, BRIDGE_E_VALUE, "%s takes %d arguments, got %d",
                       bridge_kernel_shown_name(kernel), (int)kernel->num_args, (int)num_args);
  }
  direct_tensor stack_tensors[DIRECT_STACK_ARGS];
  bridge_arg stack_call[DIRECT_STACK_ARGS];
  direct_tensor* tensors = stack_tensors;
  bridge_arg* call = stack_call;
  if (num_args > DIRECT_STACK_ARGS) {
    tensors = malloc(sizeof *tensors * (size_t)num_args);
    call = malloc(sizeof *call * (size_t)num_args);
    if (tensors == NULL || call == NULL) {
      free(tensors);
      free(call);
      return bridge_fail(error, BRIDGE_E_MEMORY, "out of memory for %d arguments",
                         (int)num_args);
    }
  }
  status = run_direct(kernel, args, written, num_args, tensors, call, error);
  if (tensors != stack_tensors) {
    free(tensors);
    free(call);
  }
  return status;
}
