/*
 * Resolves the PackedFunc generation's C API (TVM < 0.20) from the libtvm or libtvm_runtime
 * the process already loaded. These are C symbols of TVM's c_runtime_api.h, so neither the
 * compiler nor the C++ ABI that built that TVM matters.
 */
#include <stddef.h>
#include <string.h>

#include "runtime/symbol_binding.h"

tvm_legacy_symbols g_tvm_legacy;
atomic_bool g_tvm_legacy_bound = false;

int32_t bridge_tvm_legacy_bind(const char* library_path, char* error) {
  if (atomic_load(&g_tvm_legacy_bound)) return BRIDGE_OK;
  void* library = bridge_open_loaded(library_path, "the TVM runtime",
                                     "import tvm (the PackedFunc generation) first", error);
  if (library == NULL) return BRIDGE_E_SYMBOL;
  tvm_legacy_symbols table;
  memset(&table, 0, sizeof table);
  int32_t status =
      bridge_bind_symbols(BRIDGE_LIBRARY_tvm_packed_func, library, &table, library_path, error);
  if (status != BRIDGE_OK) return status;
  g_tvm_legacy = table;
  atomic_store(&g_tvm_legacy_bound, true);
  return BRIDGE_OK;
}
