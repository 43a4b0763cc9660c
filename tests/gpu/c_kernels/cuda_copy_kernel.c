/*
 * A GPU kernel written to the public protocol only: out = in for two CUDA tensors of one size,
 * as one cuMemcpyDtoDAsync on the stream the consumer hands it. The CUDA driver is taken from
 * the libcuda.so.1 the process already loaded (RTLD_NOLOAD); nothing is linked.
 *
 *   bridge_kernel_create   the copy (reads byte_offset: flag BRIDGE_KERNEL_ACCEPTS_BYTE_OFFSET)
 */
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge_cffi/protocol.h"

typedef int (*memcpy_dtod_async_fn)(uint64_t dst, uint64_t src, size_t bytes, void* stream);

typedef struct {
  bridge_kernel base;
  atomic_int references;
  memcpy_dtod_async_fn copy;
} copy_kernel;

static size_t tensor_bytes(const DLTensor* t) {
  size_t count = 1;
  for (int32_t d = 0; d < t->ndim; ++d) count *= (size_t)t->shape[d];
  return count * (((size_t)t->dtype.bits * t->dtype.lanes + 7) / 8);
}

static int32_t copy_invoke(bridge_kernel* self, const bridge_arg* args, int32_t num_args,
                           DLDevice device, void* stream, char* error) {
  copy_kernel* kernel = (copy_kernel*)self;
  if (num_args != 2 || args[0].kind != BRIDGE_ARG_TENSOR || args[1].kind != BRIDGE_ARG_TENSOR) {
    snprintf(error, BRIDGE_ERROR_CAPACITY, "cuda copy kernel: expected (tensor, tensor)");
    return 1;
  }
  const DLTensor* in = args[0].value.v_tensor;
  const DLTensor* out = args[1].value.v_tensor;
  if (device.device_type != 2 || in->device.device_type != 2 || out->device.device_type != 2) {
    snprintf(error, BRIDGE_ERROR_CAPACITY, "cuda copy kernel: expected CUDA tensors, got device "
             "type %d", (int)device.device_type);
    return 2;
  }
  size_t bytes = tensor_bytes(in);
  if (bytes != tensor_bytes(out)) {
    snprintf(error, BRIDGE_ERROR_CAPACITY, "cuda copy kernel: %zu bytes into %zu", bytes,
             tensor_bytes(out));
    return 3;
  }
  uint64_t src = (uint64_t)(uintptr_t)in->data + in->byte_offset;
  uint64_t dst = (uint64_t)(uintptr_t)out->data + out->byte_offset;
  int result = kernel->copy(dst, src, bytes, stream);
  if (result != 0) {
    snprintf(error, BRIDGE_ERROR_CAPACITY, "cuda copy kernel: cuMemcpyDtoDAsync returned %d",
             result);
    return 4;
  }
  return 0;
}

static void copy_retain(bridge_kernel* self) {
  atomic_fetch_add(&((copy_kernel*)self)->references, 1);
}

static void copy_release(bridge_kernel* self) {
  if (atomic_fetch_sub(&((copy_kernel*)self)->references, 1) == 1) free(self);
}

bridge_kernel* bridge_kernel_create(void) {
  void* cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  if (cuda == NULL) return NULL;
  void* address = dlsym(cuda, "cuMemcpyDtoDAsync_v2");
  if (address == NULL) return NULL;
  copy_kernel* kernel = calloc(1, sizeof *kernel);
  if (kernel == NULL) return NULL;
  memcpy(&kernel->copy, &address, sizeof address);
  kernel->base.struct_size = sizeof(bridge_kernel);
  kernel->base.abi_major = BRIDGE_ABI_MAJOR;
  kernel->base.abi_minor = BRIDGE_ABI_MINOR;
  kernel->base.name = "cuda_copy";
  kernel->base.invoke = copy_invoke;
  kernel->base.retain = copy_retain;
  kernel->base.release = copy_release;
  kernel->base.num_args = 2;
  kernel->base.flags = BRIDGE_KERNEL_ACCEPTS_BYTE_OFFSET;
  atomic_init(&kernel->references, 1);
  return &kernel->base;
}
