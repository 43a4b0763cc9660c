/*
 * What the MXNet engine consumer assumes about MXNet's memory layout and its DLPack export.
 * Every such assumption is made in layout.c, beside the hook its start-up self-test
 * (bridge_cffi.selftests) calls once it confirmed the assumption on the MXNet build in use;
 * the rest of the consumer asks layout.c instead of reading MXNet's structures itself.
 */
#ifndef BRIDGE_CFFI_MXNET_LAYOUT_H_
#define BRIDGE_CFFI_MXNET_LAYOUT_H_

#include <stddef.h>

#include "runtime/bridge_internal.h"

/* Set by bridge_confirm_chunk_identity: two NDArrayHandles on one storage chunk (one engine
 * variable) can be told apart by bridge_mxnet_chunk_word. */
extern atomic_bool g_chunk_identity_confirmed;
/* Set by bridge_confirm_run_context_layout: bridge_mxnet_read_run_context reads MXNet's
 * RunContext correctly. */
extern atomic_bool g_run_context_confirmed;

/* What an engine callback's RunContext says: its device, and the mshadow stream object
 * (NULL on the CPU). Read only once g_run_context_confirmed is set. */
typedef struct {
  int32_t dev_type;
  int32_t dev_id;
  void* stream_object;
} bridge_mxnet_run_context;
bridge_mxnet_run_context bridge_mxnet_read_run_context(const void* run_context);

/* The cudaStream_t inside a GPU RunContext's mshadow::Stream<gpu> object (not NULL). */
void* bridge_mxnet_cuda_stream(const void* stream_object);

/* The bytes of the elements of a view MXNet exported through DLPack. */
size_t bridge_mxnet_view_bytes(const DLTensor* tensor);

/* Fix what MXNet's DLPack export says about a view before a kernel sees it: the dtype of its
 * bools, and data aligned to bridge_data_alignment() with the rest of the offset in
 * byte_offset. */
void bridge_mxnet_fix_exported_tensor(DLTensor* tensor);

/* Align `tensor->data` down to bridge_data_alignment(), moving the rest into byte_offset. */
void bridge_align_data_pointer(DLTensor* tensor);

#endif /* BRIDGE_CFFI_MXNET_LAYOUT_H_ */
