/*
 * A pending operation's memory and references (operation.h): allocated on the caller's
 * thread, freed there when the push fails, else by the engine's param deleter (push.c).
 */
#include <stdlib.h>
#include <string.h>

#include "consumers/mxnet/operation.h"

pending_op* pending_op_alloc(int32_t num_args, const char* name) {
  size_t name_size = strlen(name) + 1;
  size_t n = (size_t)num_args;
  /* Pointer-aligned members first, bytes last: every member stays naturally aligned. */
  size_t size = sizeof(pending_op) +
                n * (2 * sizeof(bridge_arg) + sizeof(DLManagedTensor*) + sizeof(staged_view) +
                     sizeof(uint8_t)) +
                name_size;
  pending_op* op = calloc(1, size);
  if (op == NULL) return NULL;
  char* cursor = (char*)(op + 1);
  op->args = (bridge_arg*)cursor;
  cursor += n * sizeof(bridge_arg);
  op->call_args = (bridge_arg*)cursor;
  cursor += n * sizeof(bridge_arg);
  op->managed = (DLManagedTensor**)cursor;
  cursor += n * sizeof(DLManagedTensor*);
  op->staged = (staged_view*)cursor;
  cursor += n * sizeof(staged_view);
  op->written = (uint8_t*)cursor;
  cursor += n * sizeof(uint8_t);
  op->name = cursor;
  memcpy(op->name, name, name_size);
  op->num_args = num_args;
  return op;
}

static void release_array_references(pending_op* op) {
  for (int32_t i = 0; i < op->num_args; ++i) {
    if (op->args[i].kind == BRIDGE_ARG_MXNET_NDARRAY && op->args[i].value.v_ptr != NULL) {
      g_mx.MXNDArrayFree(op->args[i].value.v_ptr);
      op->args[i].value.v_ptr = NULL;
    }
  }
}

void pending_op_discard(pending_op* op) {
  release_array_references(op);
  if (op->error_sink) g_mx.MXNDArrayFree(op->error_sink);
  if (op->kernel) op->kernel->release(op->kernel);
  free(op);
}
