/*
 * The C floor for benchmarks: what pushing a call costs with no bridge in the way. Pushes a
 * no-op engine operation with the same arrays a bridged call would use, taking a DLPack view
 * of each at push time and deleting them in the param deleter, in a loop driven from C.
 * Part of the diagnostics extension, not of bridge_cffi._native: only benchmarks/paths.py
 * calls it.
 */
#include <stdlib.h>

#include "floor.h" /* beside this file */
#include "runtime/bridge_internal.h"

typedef struct {
  int32_t count;
  DLManagedTensor* managed[];
} floor_op;

static void floor_run(void* run_context, void* param) {
  (void)run_context;
  (void)param;
}

static void floor_free(void* param) {
  floor_op* op = param;
  for (int32_t i = 0; i < op->count; ++i) {
    if (op->managed[i] && op->managed[i]->deleter) op->managed[i]->deleter(op->managed[i]);
  }
  free(op);
}

int32_t bridge_floor_push_many(void** handles, int32_t num_const, int32_t num_mutable,
                               int64_t iterations, char* error) {
  if (!atomic_load(&g_mx_bound)) {
    return bridge_fail(error, BRIDGE_E_STATE, "MXNet symbols are not bound yet");
  }
  int32_t count = num_const + num_mutable;
  int32_t context[2] = {1, 0};
  for (int64_t iteration = 0; iteration < iterations; ++iteration) {
    floor_op* op = malloc(sizeof(floor_op) + sizeof(DLManagedTensor*) * (size_t)count);
    if (op == NULL) return bridge_fail(error, BRIDGE_E_MEMORY, "out of memory");
    op->count = 0;
    for (int32_t i = 0; i < count; ++i) {
      if (g_mx.MXNDArrayToDLPack(handles[i], &op->managed[i]) != 0) {
        floor_free(op);
        return bridge_fail(error, BRIDGE_E_MXNET, "%s", g_mx.MXGetLastError());
      }
      op->count = i + 1;
    }
    if (g_mx.MXEnginePushSyncND(floor_run, op, floor_free, context, handles, num_const,
                                handles + num_const, num_mutable, NULL, 0,
                                "bridge_cffi_floor") != 0) {
      return bridge_fail(error, BRIDGE_E_MXNET, "%s", g_mx.MXGetLastError());
    }
  }
  return BRIDGE_OK;
}
