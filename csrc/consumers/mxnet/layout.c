/*
 * Every assumption the MXNet engine consumer makes about MXNet's memory layout and its DLPack
 * export, each beside the hook its self-test sets (bridge_cffi.selftests runs the tests at
 * start-up, through the probes of probes.c; DESIGN §3). Nothing else in the consumer reads
 * MXNet's structures directly.
 */
#include "consumers/mxnet/layout.h"

/* ---- NDArray: which storage chunk (engine variable) a handle is on ---- */

atomic_bool g_chunk_identity_confirmed = false;

void bridge_confirm_chunk_identity(int32_t confirmed) {
  atomic_store(&g_chunk_identity_confirmed, confirmed != 0);
}

void* bridge_mxnet_chunk_word(void* ndarray_handle) {
  /* NDArray's first member is std::shared_ptr<Chunk>, whose first word is the Chunk*. */
  return ndarray_handle ? *(void* const*)ndarray_handle : NULL;
}

/* ---- RunContext: the device and stream an engine callback runs with ---- */

atomic_bool g_run_context_confirmed = false;

void bridge_confirm_run_context_layout(int32_t confirmed) {
  atomic_store(&g_run_context_confirmed, confirmed != 0);
}

/* MXNet's RunContext prefix (1.5.1 to 1.9.1): Context {dev_type, dev_id}, then the stream. */
typedef struct {
  int32_t dev_type;
  int32_t dev_id;
  void* stream;
} mx_run_context_prefix;

bridge_mxnet_run_context bridge_mxnet_read_run_context(const void* run_context) {
  const mx_run_context_prefix* context = run_context;
  bridge_mxnet_run_context seen = {context->dev_type, context->dev_id, context->stream};
  return seen;
}

void* bridge_mxnet_cuda_stream(const void* stream_object) {
  /* mshadow::Stream<gpu>'s first member is its cudaStream_t (checked by the GPU stream
   * self-test, bridge_probe_gpu_stream, before a GPU of this process gets arrays). */
  return *(void* const*)stream_object;
}

/* ---- DLPack export: what MXNDArrayToDLPack hands out ---- */

size_t bridge_mxnet_view_bytes(const DLTensor* tensor) {
  /* MXNet exports views compact (strides NULL), so the elements are one contiguous run. */
  size_t count = 1;
  for (int32_t d = 0; d < tensor->ndim; ++d) count *= (size_t)tensor->shape[d];
  return count * (((size_t)tensor->dtype.bits * tensor->dtype.lanes + 7) / 8);
}

/*
 * MXNet exports a view with its offset folded into `data`, so a slice's data can sit at any
 * element boundary. Compilers such as TVM's assume `data` is aligned (64 bytes by default) and
 * use aligned vector loads: a misaligned view then crashes the engine thread. DLPack's answer
 * is `byte_offset`: keep `data` aligned and carry the rest there. A kernel built to accept
 * offsets reads the view correctly; one that requires byte_offset == 0 (TVM's default) refuses
 * it with a clear error instead of crashing (or gets a staged copy, staging.c).
 *
 * The unit is the alignment MXNet itself gives every allocation (64 bytes from 1.6 on, 16 in
 * 1.5.1, measured at start-up and set through bridge_set_data_alignment), so a whole array
 * always arrives with byte_offset 0.
 */
static _Atomic uint32_t g_data_alignment = 64;

void bridge_set_data_alignment(uint32_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) alignment = 1;
  atomic_store(&g_data_alignment, alignment);
}

uint32_t bridge_data_alignment(void) { return atomic_load(&g_data_alignment); }

void bridge_align_data_pointer(DLTensor* tensor) {
  uintptr_t address = (uintptr_t)tensor->data + (uintptr_t)tensor->byte_offset;
  uintptr_t aligned = address & ~(uintptr_t)(atomic_load(&g_data_alignment) - 1);
  tensor->data = (void*)aligned;
  tensor->byte_offset = address - aligned;
}

void bridge_mxnet_fix_exported_tensor(DLTensor* tensor) {
  /* MXNet exports its 1-byte bool as DLPack uint1, which misdescribes the storage; DLPack
   * (0.8+) and tvm-ffi spell a byte-sized bool as code 6 with 8 bits. */
  if (tensor->dtype.code == 1 && tensor->dtype.bits == 1) {
    tensor->dtype.code = kDLBool;
    tensor->dtype.bits = 8;
  }
  bridge_align_data_pointer(tensor);
}
