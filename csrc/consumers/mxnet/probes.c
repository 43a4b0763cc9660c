/*
 * The engine side of the start-up self-tests (bridge_cffi.selftests): operations pushed on
 * MXNet's engine that record what the engine handed them, so Python can check layout.c's
 * assumptions on this MXNet build before confirming them, and one that fails the way a kernel
 * error does, to check that engine errors reach Python.
 */
#include <string.h>

#include "consumers/mxnet/layout.h"

static void probe_run(void* run_context, void* param) {
  bridge_run_context_seen* seen = param;
  bridge_mxnet_run_context context = bridge_mxnet_read_run_context(run_context);
  seen->dev_type = context.dev_type;
  seen->dev_id = context.dev_id;
  seen->stream_is_null = context.stream_object == NULL;
  seen->ran = 1;
}

int32_t bridge_probe_run_context(void* ndarray_handle, int32_t dev_type, int32_t dev_id,
                                 bridge_run_context_seen* seen, char* error) {
  if (!atomic_load(&g_mx_bound)) {
    return bridge_fail(error, BRIDGE_E_STATE, "MXNet symbols are not bound yet");
  }
  memset(seen, 0, sizeof *seen);
  int32_t context[2] = {dev_type, dev_id};
  void* mutable_nds[1] = {ndarray_handle};
  if (g_mx.MXEnginePushSyncND(probe_run, seen, NULL, context, NULL, 0, mutable_nds, 1, NULL, 0,
                              "bridge_cffi_run_context_probe") != 0) {
    return bridge_fail(error, BRIDGE_E_MXNET, "%s", g_mx.MXGetLastError());
  }
  return BRIDGE_OK;
}

static void gpu_probe_run(void* run_context, void* param) {
  bridge_gpu_stream_seen* seen = param;
  bridge_mxnet_run_context context = bridge_mxnet_read_run_context(run_context);
  seen->dev_type = context.dev_type;
  seen->dev_id = context.dev_id;
  seen->stream_object_is_null = context.stream_object == NULL;
  seen->context_matches = -1;
  seen->query_result = -1;
  if (context.stream_object != NULL) {
    /* What pending_op_run reads as its stream (layout.c); the caller checks it is one. */
    void* stream = bridge_mxnet_cuda_stream(context.stream_object);
    seen->stream = (uint64_t)(uintptr_t)stream;
    /* The legacy (0x1) and per-thread (0x2) default-stream handles, and NULL, are not
     * pointers a driver call should be handed as a stream object here: the caller refuses. */
    if ((uintptr_t)stream > 2) {
      seen->query_result = g_cuda.cuStreamQuery(stream);
      void* owner = NULL;
      void* current = NULL;
      if (g_cuda.cuStreamGetCtx != NULL && g_cuda.cuCtxGetCurrent != NULL &&
          g_cuda.cuStreamGetCtx(stream, &owner) == CUDA_SUCCESS_RESULT &&
          g_cuda.cuCtxGetCurrent(&current) == CUDA_SUCCESS_RESULT) {
        seen->context_matches = owner != NULL && owner == current;
      }
    }
  }
  seen->ran = 1;
}

int32_t bridge_probe_gpu_stream(void* ndarray_handle, int32_t dev_id,
                                bridge_gpu_stream_seen* seen, char* error) {
  if (!atomic_load(&g_mx_bound)) {
    return bridge_fail(error, BRIDGE_E_STATE, "MXNet symbols are not bound yet");
  }
  if (!atomic_load(&g_run_context_confirmed)) {
    return bridge_fail(error, BRIDGE_E_STATE,
                       "the run-context layout self-test has not confirmed the Context prefix");
  }
  if (!atomic_load(&g_cuda_bound)) {
    return bridge_fail(error, BRIDGE_E_STATE, "the CUDA driver symbols are not bound yet");
  }
  memset(seen, 0, sizeof *seen);
  int32_t context[2] = {MX_DEV_GPU, dev_id};
  void* mutable_nds[1] = {ndarray_handle};
  if (g_mx.MXEnginePushSyncND(gpu_probe_run, seen, NULL, context, NULL, 0, mutable_nds, 1, NULL,
                              0, "bridge_cffi_gpu_stream_probe") != 0) {
    return bridge_fail(error, BRIDGE_E_MXNET, "%s", g_mx.MXGetLastError());
  }
  return BRIDGE_OK;
}

static void probe_fail(void* run_context, void* param) {
  (void)run_context;
  (void)param;
  bridge_raise_in_engine("bridge_cffi self-test: engine error propagation");
}

int32_t bridge_probe_engine_error(void* ndarray_handle, char* error) {
  if (!atomic_load(&g_mx_bound)) {
    return bridge_fail(error, BRIDGE_E_STATE, "MXNet symbols are not bound yet");
  }
  int32_t context[2] = {MX_DEV_CPU, 0};
  void* mutable_nds[1] = {ndarray_handle};
  if (g_mx.MXEnginePushSyncND(probe_fail, NULL, NULL, context, NULL, 0, mutable_nds, 1, NULL, 0,
                              "bridge_cffi_error_probe") != 0) {
    return bridge_fail(error, BRIDGE_E_MXNET, "%s", g_mx.MXGetLastError());
  }
  return BRIDGE_OK;
}
