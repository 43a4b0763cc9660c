/*
 * Resolves MXNet's C API from the libmxnet the process already loaded. RTLD_NOLOAD makes sure
 * no second copy is ever loaded: a second copy would have its own engine and its own arrays.
 */
#include <stddef.h>
#include <string.h>

#include "runtime/symbol_binding.h"

mx_symbols g_mx;
atomic_bool g_mx_bound = false;

int32_t bridge_mxnet_bind(const char* library_path, char* error) {
  if (atomic_load(&g_mx_bound)) return BRIDGE_OK;
  void* library = bridge_open_loaded(library_path, "libmxnet", "import mxnet first", error);
  if (library == NULL) return BRIDGE_E_SYMBOL;
  mx_symbols table;
  memset(&table, 0, sizeof table);
  int32_t status = bridge_bind_symbols(BRIDGE_LIBRARY_mxnet, library, &table, library_path, error);
  if (status != BRIDGE_OK) return status;
  /* dlsym through MXNet's handle searches MXNet and its dependencies, so this finds the
   * libstdc++ (or static copy) whose std::exception MXNet's engine catches. */
  void* thrower = bridge_resolve(library, "_ZSt21__throw_runtime_errorPKc");
  memcpy(&table.throw_runtime_error, &thrower, sizeof thrower);
  /* The process keeps MXNet loaded for its lifetime; dropping our extra reference is safe
   * and keeps dlclose semantics unchanged for MXNet itself. */
  g_mx = table;
  atomic_store(&g_error_mode,
               thrower ? BRIDGE_ERRORS_ENGINE_EXCEPTION : BRIDGE_ERRORS_RECORDED);
  atomic_store(&g_mx_bound, true);
  return BRIDGE_OK;
}

int32_t bridge_mxnet_version(int32_t* out_version, char* error) {
  if (!atomic_load(&g_mx_bound)) {
    return bridge_fail(error, BRIDGE_E_STATE, "MXNet symbols are not bound yet");
  }
  int version = 0;
  if (g_mx.MXGetVersion(&version) != 0) {
    return bridge_fail(error, BRIDGE_E_MXNET, "MXGetVersion failed: %s", g_mx.MXGetLastError());
  }
  *out_version = version;
  return BRIDGE_OK;
}
