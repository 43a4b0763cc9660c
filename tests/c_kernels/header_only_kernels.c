/*
 * Kernels written from protocol.h's comments alone, as a third party would: the test copies
 * this file and protocol.h into an empty directory and builds them there with nothing else on
 * the include path, -fvisibility=hidden included (the factories are exported by the header's
 * declaration and BRIDGE_KERNEL_EXPORT, not by the build's defaults).
 *
 *   bridge_kernel_create  axpy: y[i] += a * x[i]  (x float32 read, y float32 written, a float).
 *                         Reads byte_offset (flag set); leaves `name` NULL; correct when x and y
 *                         are the same array (each element is read before it is written).
 *   masked_fill_create    out[i] = mask[i] ? value : out[i]  (mask bool, out float32, value
 *                         float). No flag: refuses a byte_offset, so misaligned views must
 *                         arrive staged; checks that bool arrives as {kDLBool, 8, 1}.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "bridge_cffi/protocol.h"

typedef struct {
  bridge_kernel base;
  atomic_int references;
} counted_kernel;

static void counted_retain(bridge_kernel* self) {
  atomic_fetch_add(&((counted_kernel*)self)->references, 1);
}

static void counted_release(bridge_kernel* self) {
  if (atomic_fetch_sub(&((counted_kernel*)self)->references, 1) == 1) free(self);
}

static int64_t count_of(const DLTensor* tensor) {
  int64_t count = 1;
  for (int32_t d = 0; d < tensor->ndim; ++d) count *= tensor->shape[d];
  return count;
}

/* Compact row-major: strides NULL, or strides that say the same. */
static int is_compact(const DLTensor* tensor) {
  if (tensor->strides == NULL) return 1;
  int64_t expected = 1;
  for (int32_t d = tensor->ndim - 1; d >= 0; --d) {
    if (tensor->shape[d] != 1 && tensor->strides[d] != expected) return 0;
    expected *= tensor->shape[d];
  }
  return 1;
}

static int is_type(const DLTensor* tensor, uint8_t code, uint8_t bits) {
  return tensor->dtype.code == code && tensor->dtype.bits == bits && tensor->dtype.lanes == 1;
}

static int32_t axpy_invoke(bridge_kernel* self, const bridge_arg* args, int32_t num_args,
                           DLDevice device, void* stream, char* error) {
  (void)self;
  (void)stream; /* CPU only: NULL there */
  if (device.device_type != kDLCPU) {
    snprintf(error, BRIDGE_ERROR_CAPACITY, "axpy: CPU only, got device type %d",
             (int)device.device_type);
    return 1;
  }
  if (num_args != 3 || args[0].kind != BRIDGE_ARG_TENSOR || args[1].kind != BRIDGE_ARG_TENSOR ||
      args[2].kind != BRIDGE_ARG_FLOAT) {
    snprintf(error, BRIDGE_ERROR_CAPACITY, "axpy: expected (tensor x, tensor y, float a)");
    return 1;
  }
  const DLTensor* x = args[0].value.v_tensor;
  const DLTensor* y = args[1].value.v_tensor;
  if (!is_type(x, kDLFloat, 32) || !is_type(y, kDLFloat, 32)) {
    snprintf(error, BRIDGE_ERROR_CAPACITY,
             "axpy: x and y must be float32, got codes %u/%u with %u/%u bits",
             (unsigned)x->dtype.code, (unsigned)y->dtype.code, (unsigned)x->dtype.bits,
             (unsigned)y->dtype.bits);
    return 2;
  }
  if (count_of(x) != count_of(y) || !is_compact(x) || !is_compact(y)) {
    snprintf(error, BRIDGE_ERROR_CAPACITY, "axpy: x and y must be compact and of one size");
    return 2;
  }
  /* No `restrict`: x and y may be the same memory (protocol.h, aliasing). */
  const float* in = (const float*)((const char*)x->data + x->byte_offset);
  float* out = (float*)((char*)y->data + y->byte_offset);
  double a = args[2].value.v_float64;
  for (int64_t i = 0, n = count_of(x); i < n; ++i) out[i] = (float)(out[i] + a * in[i]);
  return 0;
}

static int32_t masked_fill_invoke(bridge_kernel* self, const bridge_arg* args, int32_t num_args,
                                  DLDevice device, void* stream, char* error) {
  (void)self;
  (void)stream;
  if (device.device_type != kDLCPU || num_args != 3 || args[0].kind != BRIDGE_ARG_TENSOR ||
      args[1].kind != BRIDGE_ARG_TENSOR || args[2].kind != BRIDGE_ARG_FLOAT) {
    snprintf(error, BRIDGE_ERROR_CAPACITY, "masked_fill: expected (bool mask, float32 out, "
                                           "float value) on the CPU");
    return 1;
  }
  const DLTensor* mask = args[0].value.v_tensor;
  const DLTensor* out = args[1].value.v_tensor;
  if (!is_type(mask, kDLBool, 8)) {
    snprintf(error, BRIDGE_ERROR_CAPACITY, "masked_fill: mask arrived as code %u, %u bits",
             (unsigned)mask->dtype.code, (unsigned)mask->dtype.bits);
    return 2;
  }
  if (!is_type(out, kDLFloat, 32) || count_of(mask) != count_of(out) || !is_compact(mask) ||
      !is_compact(out)) {
    snprintf(error, BRIDGE_ERROR_CAPACITY, "masked_fill: out must be compact float32 of the "
                                           "mask's size");
    return 2;
  }
  /* Without BRIDGE_KERNEL_ACCEPTS_BYTE_OFFSET it may refuse what it cannot read. */
  if (mask->byte_offset != 0 || out->byte_offset != 0) {
    snprintf(error, BRIDGE_ERROR_CAPACITY, "masked_fill: byte_offset %llu/%llu, expected 0",
             (unsigned long long)mask->byte_offset, (unsigned long long)out->byte_offset);
    return 3;
  }
  const uint8_t* m = mask->data;
  float* o = out->data;
  float value = (float)args[2].value.v_float64;
  for (int64_t i = 0, n = count_of(out); i < n; ++i) {
    if (m[i]) o[i] = value;
  }
  return 0;
}

static bridge_kernel* make(const char* name, int32_t (*invoke)(bridge_kernel*, const bridge_arg*,
                                                               int32_t, DLDevice, void*, char*),
                           uint32_t flags) {
  counted_kernel* kernel = calloc(1, sizeof *kernel);
  if (kernel == NULL) return NULL;
  kernel->base.struct_size = sizeof(bridge_kernel);
  kernel->base.abi_major = BRIDGE_ABI_MAJOR;
  kernel->base.abi_minor = BRIDGE_ABI_MINOR;
  kernel->base.name = name;
  kernel->base.invoke = invoke;
  kernel->base.retain = counted_retain;
  kernel->base.release = counted_release;
  kernel->base.num_args = 3;
  kernel->base.flags = flags;
  atomic_init(&kernel->references, 1); /* the factory's caller owns this one */
  return &kernel->base;
}

bridge_kernel* bridge_kernel_create(void) {
  return make(NULL, axpy_invoke, BRIDGE_KERNEL_ACCEPTS_BYTE_OFFSET);
}

BRIDGE_KERNEL_EXPORT bridge_kernel* masked_fill_create(void) {
  return make("masked_fill", masked_fill_invoke, 0);
}
