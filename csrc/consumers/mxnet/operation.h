/*
 * One pending operation of the MXNet engine consumer, shared by the side that pushes it
 * (push.c, the caller's thread) and the side that runs it (run.c, an engine thread).
 *
 * Timeline of one operation:
 *   push (caller's thread)  validate every argument; take one reference per array argument
 *                           (MXNDArrayDetach, which never allocates or reads data); push.
 *   run (engine thread)     all dependencies are done: turn each reference into a DLTensor
 *                           (MXNDArrayToDLPack), invoke the kernel, on a GPU wait for the
 *                           engine's stream (finish_on_stream), call every DLPack deleter.
 *   free (engine thread)    drop the array references and the kernel reference.
 * DLPack is taken at run time, not at push time, because MXNDArrayToDLPack allocates a lazily
 * allocated array: at push time that would race with a pending native operation allocating
 * the same array on an engine thread.
 */
#ifndef BRIDGE_CFFI_MXNET_OPERATION_H_
#define BRIDGE_CFFI_MXNET_OPERATION_H_

#include <stddef.h>

#include "runtime/bridge_internal.h"

/* A misaligned view handed to a kernel through an aligned copy (see staging.c). */
typedef struct {
  void* buffer; /* aligned copy the kernel sees, or NULL when the view is not staged */
  void* origin; /* where the view's elements live in MXNet's storage */
  size_t bytes;
  size_t capacity; /* the buffer's size: a multiple of STAGING_ALIGNMENT */
  bool on_device;  /* a GPU view: buffer is device memory from cuMemAllocAsync */
} staged_view;

/* One pending operation, allocated as a single block; freed by the engine's param deleter. */
typedef struct {
  bridge_kernel* kernel; /* one reference, owned */
  int32_t num_args;
  int32_t device_type; /* MXNet device type of the arrays (CPU family or GPU) */
  int32_t device_id;
  bridge_arg* args;             /* as pushed: BRIDGE_ARG_MXNET_NDARRAY, an owned reference */
  bridge_arg* call_args;        /* run-time copy for the kernel: BRIDGE_ARG_TENSOR, a DLTensor*
                                   into managed[i], where args has an NDArrayHandle */
  DLManagedTensor** managed;    /* run-time DLPack views, deleted before the run returns */
  staged_view* staged;          /* run-time: aligned copies of misaligned views */
  uint8_t* written;             /* per position: 1 when the kernel may write that array */
  char* name;                   /* operator name for MXNet's profiler */
  bool writes_nothing;          /* no write dependency: an engine error would be lost */
  bool stage_misaligned;        /* the kernel needs byte_offset 0 (no ACCEPTS_BYTE_OFFSET) */
  void* error_sink;             /* owned NDArrayHandle written when the op writes no array */
} pending_op;

/* A zeroed op for `num_args` arguments named `name` (copied), or NULL when out of memory. */
pending_op* pending_op_alloc(int32_t num_args, const char* name);
/* Free an op that never reached the engine, with the references it holds. */
void pending_op_discard(pending_op* op);

/* The engine callback of a pushed op (run.c). */
void pending_op_run(void* run_context, void* param);
/* True while this thread is inside the push of `op` (push.c): NaiveEngine runs the op inside
 * the push, whose caller then gets a thrown error as the push's return code. */
bool pending_op_is_being_pushed(const pending_op* op);

/* ---- staging.c: aligned copies of misaligned views, for kernels needing byte_offset 0 ---- */
int32_t stage_view(DLTensor* tensor, staged_view* staged, char* error);
int32_t stage_device_view(DLTensor* tensor, staged_view* staged, void* stream, char* error);
/* Copy written views back (when `copy_back`) and release every staged copy of `op`. Returns
 * the first CUDA error of a GPU copy back, else 0. */
int unstage_views(pending_op* op, bool copy_back, void* stream);

#endif /* BRIDGE_CFFI_MXNET_OPERATION_H_ */
