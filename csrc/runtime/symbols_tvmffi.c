/* Resolves tvm-ffi's stable C ABI from the libtvm_ffi the process already loaded. */
#include <stddef.h>
#include <string.h>

#include "runtime/symbol_binding.h"

tvmffi_symbols g_tvmffi;
atomic_bool g_tvmffi_bound = false;

int32_t bridge_tvmffi_bind(const char* library_path, char* error) {
  if (atomic_load(&g_tvmffi_bound)) return BRIDGE_OK;
  void* library = bridge_open_loaded(library_path, "libtvm_ffi", "import tvm_ffi first", error);
  if (library == NULL) return BRIDGE_E_SYMBOL;
  tvmffi_symbols table;
  memset(&table, 0, sizeof table);
  int32_t status = bridge_bind_symbols(BRIDGE_LIBRARY_tvmffi, library, &table, library_path, error);
  if (status != BRIDGE_OK) return status;
  g_tvmffi = table;
  atomic_store(&g_tvmffi_bound, true);
  return BRIDGE_OK;
}
