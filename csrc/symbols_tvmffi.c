/* Resolves tvm-ffi's stable C ABI from the libtvm_ffi the process already loaded. */
#include <dlfcn.h>
#include <stddef.h>
#include <string.h>

#include "bridge_internal.h"

tvmffi_symbols g_tvmffi;
atomic_bool g_tvmffi_bound = false;

static void* resolve(void* library, const char* name) {
  dlerror();
  return dlsym(library, name);
}

#define BIND(table, library, symbol, required)                                           \
  do {                                                                                   \
    void* address = resolve(library, #symbol);                                           \
    if (address == NULL && (required)) {                                                 \
      return bridge_fail(error, BRIDGE_E_SYMBOL, "symbol %s not found in %s", #symbol,   \
                         library_path);                                                  \
    }                                                                                    \
    memcpy(&(table).symbol, &address, sizeof address);                                   \
  } while (0)

int32_t bridge_tvmffi_bind(const char* library_path, char* error) {
  if (atomic_load(&g_tvmffi_bound)) return BRIDGE_OK;
  void* library = dlopen(library_path, RTLD_NOW | RTLD_NOLOAD);
  if (library == NULL) {
    const char* reason = dlerror();
    return bridge_fail(error, BRIDGE_E_SYMBOL,
                       "libtvm_ffi at %s is not loaded in this process (%s); import tvm_ffi first",
                       library_path, reason ? reason : "no reason given");
  }
  tvmffi_symbols table;
  memset(&table, 0, sizeof table);
  BIND(table, library, TVMFFIFunctionCall, true);
  BIND(table, library, TVMFFIErrorMoveFromRaised, true);
  BIND(table, library, TVMFFIObjectIncRef, true);
  BIND(table, library, TVMFFIObjectDecRef, true);
  BIND(table, library, TVMFFIEnvSetStream, false);
  g_tvmffi = table;
  atomic_store(&g_tvmffi_bound, true);
  return BRIDGE_OK;
}
