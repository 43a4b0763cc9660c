/*
 * Resolves the few CUDA driver API functions the GPU path needs from the libcuda.so.1 the
 * process already loaded (pip's CUDA builds of MXNet link it, so `import mxnet` maps it). The
 * extension never links CUDA: without a loaded libcuda the bind fails with the reason, and GPU
 * arrays are refused before anything is pushed.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "runtime/symbol_binding.h"

cuda_symbols g_cuda;
atomic_bool g_cuda_bound = false;

int32_t bridge_cuda_bind(const char* library_path, char* error) {
  if (atomic_load(&g_cuda_bound)) return BRIDGE_OK;
  void* library = bridge_open_loaded(library_path, "the CUDA driver (libcuda)",
                                     "GPU arrays need the CUDA driver MXNet's CUDA build loads",
                                     error);
  if (library == NULL) return BRIDGE_E_SYMBOL;
  cuda_symbols table;
  memset(&table, 0, sizeof table);
  int32_t status = bridge_bind_symbols(BRIDGE_LIBRARY_cuda, library, &table, library_path, error);
  if (status != BRIDGE_OK) return status;
  if (!table.cuMemAllocAsync || !table.cuMemFreeAsync || !table.cuMemcpyDtoDAsync_v2) {
    /* all or none: GPU views are then not staged */
    bridge_forget_symbol(BRIDGE_LIBRARY_cuda, &table, "cuMemAllocAsync");
  }
  g_cuda = table;
  atomic_store(&g_cuda_bound, true);
  return BRIDGE_OK;
}

void bridge_cuda_describe(int32_t result, char* out, size_t capacity) {
  const char* name = NULL;
  const char* text = NULL;
  if (g_cuda.cuGetErrorName == NULL || g_cuda.cuGetErrorName(result, &name) != 0) name = NULL;
  if (g_cuda.cuGetErrorString == NULL || g_cuda.cuGetErrorString(result, &text) != 0) {
    text = NULL;
  }
  snprintf(out, capacity, "%s (CUresult %d%s%s)", name ? name : "CUDA error", (int)result,
           text ? ": " : "", text ? text : "");
}

/* ---- which GPUs passed the stream self-test (bridge_confirm_gpu) ---- */

static atomic_int g_gpu_state[BRIDGE_MAX_GPUS];
static char g_gpu_refusal[BRIDGE_MAX_GPUS][256];

void bridge_confirm_gpu(int32_t device_id, int32_t confirmed, const char* reason) {
  if (device_id < 0 || device_id >= BRIDGE_MAX_GPUS) return;
  /* The reason is written before the state is published; readers read it after the state. */
  snprintf(g_gpu_refusal[device_id], sizeof g_gpu_refusal[device_id], "%s",
           reason ? reason : "no reason given");
  atomic_store(&g_gpu_state[device_id], confirmed ? BRIDGE_GPU_CONFIRMED : BRIDGE_GPU_REFUSED);
}

int32_t bridge_gpu_state(int32_t device_id, const char** reason) {
  if (device_id < 0 || device_id >= BRIDGE_MAX_GPUS) {
    if (reason) *reason = "device ids beyond the bridge's table are not supported";
    return BRIDGE_GPU_REFUSED;
  }
  int32_t state = atomic_load(&g_gpu_state[device_id]);
  if (reason) *reason = state == BRIDGE_GPU_REFUSED ? g_gpu_refusal[device_id] : "";
  return state;
}

static _Thread_local int32_t t_untested_gpu = -1;

void bridge_note_untested_gpu(int32_t device_id) { t_untested_gpu = device_id; }

int32_t bridge_untested_gpu(void) { return t_untested_gpu; }
