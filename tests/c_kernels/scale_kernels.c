/*
 * Test kernels written to the public protocol only (no bridge internals): compiled at test
 * time by gcc or clang, loaded with bridge_cffi.load_c_kernel.
 *
 *   bridge_kernel_create   out[i] = in[i] * scale   (in float32, out float32, scale double)
 *   failing_kernel_create  always fails with "scale kernel refused: <scale>"
 *   wrong_major_create     declares ABI major BRIDGE_ABI_MAJOR + 1
 *   small_struct_create    declares a struct_size too small for ABI 1.0
 *   newer_minor_create     declares a newer minor version and a larger struct
 *   aligned_only_create    bridge_kernel_create's kernel without ACCEPTS_BYTE_OFFSET: it
 *                          refuses a byte_offset, so the bridge must stage misaligned views
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge_cffi/protocol.h"

typedef struct {
  bridge_kernel base;
  atomic_int references;
  int fail;
  int aligned_only;
  /* What a newer minor version might append; the bridge must not care. */
  int64_t appended_field;
} scale_kernel;

static int64_t element_count(const DLTensor* tensor) {
  int64_t count = 1;
  for (int32_t d = 0; d < tensor->ndim; ++d) count *= tensor->shape[d];
  return count;
}

static int32_t scale_invoke(bridge_kernel* self, const bridge_arg* args, int32_t num_args,
                            DLDevice device, void* stream, char* error) {
  scale_kernel* kernel = (scale_kernel*)self;
  (void)device;
  (void)stream;
  if (num_args != 3 || args[0].kind != BRIDGE_ARG_TENSOR || args[1].kind != BRIDGE_ARG_TENSOR ||
      args[2].kind != BRIDGE_ARG_FLOAT) {
    snprintf(error, BRIDGE_ERROR_CAPACITY, "scale kernel: expected (tensor, tensor, float)");
    return 1;
  }
  if (kernel->fail) {
    snprintf(error, BRIDGE_ERROR_CAPACITY, "scale kernel refused: %g", args[2].value.v_float64);
    return 7;
  }
  const DLTensor* in = args[0].value.v_tensor;
  DLTensor* out = args[1].value.v_tensor;
  if (in->dtype.code != 2 || in->dtype.bits != 32 || out->dtype.code != 2 ||
      out->dtype.bits != 32 || element_count(in) != element_count(out)) {
    snprintf(error, BRIDGE_ERROR_CAPACITY, "scale kernel: expected two float32 tensors of one size");
    return 2;
  }
  if (kernel->aligned_only && (in->byte_offset != 0 || out->byte_offset != 0)) {
    snprintf(error, BRIDGE_ERROR_CAPACITY, "aligned-only kernel got byte_offset %llu / %llu",
             (unsigned long long)in->byte_offset, (unsigned long long)out->byte_offset);
    return 3;
  }
  const float* source = (const float*)((const char*)in->data + in->byte_offset);
  float* target = (float*)((char*)out->data + out->byte_offset);
  int64_t count = element_count(in);
  for (int64_t i = 0; i < count; ++i) target[i] = (float)(source[i] * args[2].value.v_float64);
  return 0;
}

static void scale_retain(bridge_kernel* self) {
  atomic_fetch_add(&((scale_kernel*)self)->references, 1);
}

static void scale_release(bridge_kernel* self) {
  if (atomic_fetch_sub(&((scale_kernel*)self)->references, 1) == 1) free(self);
}

static bridge_kernel* make(const char* name, int fail) {
  scale_kernel* kernel = calloc(1, sizeof *kernel);
  if (kernel == NULL) return NULL;
  kernel->base.struct_size = sizeof(bridge_kernel);
  kernel->base.abi_major = BRIDGE_ABI_MAJOR;
  kernel->base.abi_minor = BRIDGE_ABI_MINOR;
  kernel->base.name = name;
  kernel->base.invoke = scale_invoke;
  kernel->base.retain = scale_retain;
  kernel->base.release = scale_release;
  kernel->base.num_args = 3;
  /* It reads data + byte_offset itself: no staging needed. */
  kernel->base.flags = BRIDGE_KERNEL_ACCEPTS_BYTE_OFFSET;
  atomic_init(&kernel->references, 1);
  kernel->fail = fail;
  return &kernel->base;
}

bridge_kernel* bridge_kernel_create(void) { return make("c_scale", 0); }

bridge_kernel* failing_kernel_create(void) { return make("c_failing_scale", 1); }

bridge_kernel* wrong_major_create(void) {
  bridge_kernel* kernel = make("c_wrong_major", 0);
  kernel->abi_major = BRIDGE_ABI_MAJOR + 1;
  return kernel;
}

bridge_kernel* small_struct_create(void) {
  bridge_kernel* kernel = make("c_small_struct", 0);
  kernel->struct_size = 8;
  return kernel;
}

bridge_kernel* newer_minor_create(void) {
  bridge_kernel* kernel = make("c_newer_minor", 0);
  kernel->abi_minor = BRIDGE_ABI_MINOR + 3;
  kernel->struct_size = sizeof(scale_kernel);
  ((scale_kernel*)kernel)->appended_field = 42;
  return kernel;
}

bridge_kernel* aligned_only_create(void) {
  bridge_kernel* kernel = make("c_aligned_only", 0);
  kernel->flags = 0;
  ((scale_kernel*)kernel)->aligned_only = 1;
  return kernel;
}
