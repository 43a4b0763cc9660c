/*
 * A kernel that needs byte_offset 0 (TVM's default buffers: "Invalid x.byte_offset ... expected
 * 0") gets a misaligned view through an aligned copy of its elements: copied in on the engine
 * thread while the operation holds the array's dependency (no other operation can see the
 * copy), and copied back after the kernel for written arrays (unstage_views). GPU views are
 * staged on the device instead (stage_device_view). What a view's elements are is layout.c's
 * business (bridge_mxnet_view_bytes).
 */
#include <stdlib.h>
#include <string.h>

#include "consumers/mxnet/layout.h"
#include "consumers/mxnet/operation.h"

/*
 * Each engine thread keeps the largest staging buffer it freed (up to SPARE_LIMIT) for the next
 * staged view. Without it, a view of 16 MiB or more got a fresh mmap each call, whose page
 * faults and zeroing cost 7 to 12 memcpys of the view (measured: 2^22 and 2^24 float32, TVM's
 * default-buffer kernel); with it, staging costs 0.6 to 1.15 memcpys at 2^20 to 2^24. Engine
 * threads live as long as the process.
 */
enum { SPARE_LIMIT = 64 << 20, STAGING_ALIGNMENT = 64 };
static _Thread_local void* t_spare_buffer = NULL;
static _Thread_local size_t t_spare_bytes = 0;

int32_t stage_view(DLTensor* tensor, staged_view* staged, char* error) {
  size_t bytes = bridge_mxnet_view_bytes(tensor);
  /* Aligned as MXNet aligns allocations (at most 64 bytes), so the kernel sees what a whole
   * array would give it. */
  size_t rounded = (bytes + STAGING_ALIGNMENT - 1) / STAGING_ALIGNMENT * STAGING_ALIGNMENT;
  if (rounded == 0) rounded = STAGING_ALIGNMENT;
  void* buffer;
  if (t_spare_buffer != NULL && t_spare_bytes >= rounded) {
    buffer = t_spare_buffer;
    rounded = t_spare_bytes;
    t_spare_buffer = NULL;
    t_spare_bytes = 0;
  } else {
    buffer = aligned_alloc(STAGING_ALIGNMENT, rounded);
  }
  staged->capacity = rounded;
  if (buffer == NULL) {
    return bridge_fail(error, BRIDGE_E_MEMORY, "out of memory staging a %zu-byte view", bytes);
  }
  staged->origin = (char*)tensor->data + tensor->byte_offset;
  staged->buffer = buffer;
  staged->bytes = bytes;
  memcpy(buffer, staged->origin, bytes);
  tensor->data = buffer;
  tensor->byte_offset = 0;
  atomic_fetch_add(&g_views_staged, 1);
  return BRIDGE_OK;
}

/*
 * The GPU's counterpart: a misaligned GPU view for a kernel that needs byte_offset 0 gets an
 * aligned device buffer, allocated, filled, copied back and freed in stream order on the
 * engine's stream (cuMemAllocAsync, cuMemcpyDtoDAsync, cuMemFreeAsync), so the kernel, which
 * runs on that stream too, sees the copy, and the stream synchronize that ends every GPU
 * operation (finish_on_stream) also waits for the copy back. Without those driver functions
 * (before CUDA 11.2) GPU views are not staged and such a kernel refuses them itself.
 */
int32_t stage_device_view(DLTensor* tensor, staged_view* staged, void* stream, char* error) {
  size_t bytes = bridge_mxnet_view_bytes(tensor);
  uint64_t buffer = 0;
  uint64_t origin = (uint64_t)(uintptr_t)tensor->data + tensor->byte_offset;
  int result = g_cuda.cuMemAllocAsync(&buffer, bytes ? bytes : 1, stream);
  if (result == CUDA_SUCCESS_RESULT && bytes) {
    result = g_cuda.cuMemcpyDtoDAsync_v2(buffer, origin, bytes, stream);
    if (result != CUDA_SUCCESS_RESULT) g_cuda.cuMemFreeAsync(buffer, stream);
  }
  if (result != CUDA_SUCCESS_RESULT) {
    char described[256];
    bridge_cuda_describe(result, described, sizeof described);
    return bridge_fail(error, BRIDGE_E_MEMORY, "staging a %zu-byte GPU view failed: %s", bytes,
                       described);
  }
  staged->buffer = (void*)(uintptr_t)buffer;
  staged->origin = (void*)(uintptr_t)origin;
  staged->bytes = bytes;
  staged->capacity = bytes;
  staged->on_device = true;
  tensor->data = staged->buffer;
  tensor->byte_offset = 0;
  atomic_fetch_add(&g_views_staged, 1);
  return BRIDGE_OK;
}

/* The largest CPU copy becomes this thread's spare; GPU ones are freed in stream order. */
int unstage_views(pending_op* op, bool copy_back, void* stream) {
  int failed = CUDA_SUCCESS_RESULT;
  for (int32_t i = 0; i < op->num_args; ++i) {
    staged_view* staged = &op->staged[i];
    if (staged->buffer == NULL) continue;
    if (staged->on_device) {
      uint64_t buffer = (uint64_t)(uintptr_t)staged->buffer;
      if (copy_back && op->written[i] && staged->bytes) {
        int result = g_cuda.cuMemcpyDtoDAsync_v2((uint64_t)(uintptr_t)staged->origin, buffer,
                                                 staged->bytes, stream);
        if (failed == CUDA_SUCCESS_RESULT) failed = result;
      }
      g_cuda.cuMemFreeAsync(buffer, stream);
      staged->buffer = NULL;
      continue;
    }
    if (copy_back && op->written[i]) memcpy(staged->origin, staged->buffer, staged->bytes);
    if (staged->capacity <= SPARE_LIMIT && staged->capacity > t_spare_bytes) {
      free(t_spare_buffer); /* keep the larger one as this thread's spare */
      t_spare_buffer = staged->buffer;
      t_spare_bytes = staged->capacity;
    } else {
      free(staged->buffer);
    }
    staged->buffer = NULL;
  }
  return failed;
}
