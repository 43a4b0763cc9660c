/*
 * Resolves MXNet's C API from the libmxnet the process already loaded. RTLD_NOLOAD makes sure
 * no second copy is ever loaded: a second copy would have its own engine and its own arrays.
 */
#include <dlfcn.h>
#include <stddef.h>
#include <string.h>

#include "bridge_internal.h"

mx_symbols g_mx;
atomic_bool g_mx_bound = false;

static void* resolve(void* library, const char* name) {
  dlerror();
  return dlsym(library, name);
}

/* Assigning dlsym's void* to a function pointer is what POSIX requires to work; memcpy keeps
 * the conversion free of -Wpedantic's object-to-function pointer warning. */
#define BIND(table, library, symbol, required)                                           \
  do {                                                                                   \
    void* address = resolve(library, #symbol);                                           \
    if (address == NULL && (required)) {                                                 \
      return bridge_fail(error, BRIDGE_E_SYMBOL, "symbol %s not found in %s", #symbol,   \
                         library_path);                                                  \
    }                                                                                    \
    memcpy(&(table).symbol, &address, sizeof address);                                   \
  } while (0)

int32_t bridge_mxnet_bind(const char* library_path, char* error) {
  if (atomic_load(&g_mx_bound)) return BRIDGE_OK;
  void* library = dlopen(library_path, RTLD_NOW | RTLD_NOLOAD);
  if (library == NULL) {
    const char* reason = dlerror();
    return bridge_fail(error, BRIDGE_E_SYMBOL,
                       "libmxnet at %s is not loaded in this process (%s); import mxnet first",
                       library_path, reason ? reason : "no reason given");
  }
  mx_symbols table;
  memset(&table, 0, sizeof table);
  BIND(table, library, MXGetVersion, true);
  BIND(table, library, MXGetLastError, true);
  BIND(table, library, MXEnginePushSyncND, true);
  BIND(table, library, MXNDArrayToDLPack, true);
  BIND(table, library, MXNDArrayDetach, true);
  BIND(table, library, MXNDArrayFree, true);
  BIND(table, library, MXNDArrayGetStorageType, true);
  BIND(table, library, MXNDArrayGetDType, true);
  BIND(table, library, MXNDArrayGetContext, true);
  /* dlsym through MXNet's handle searches MXNet and its dependencies, so this finds the
   * libstdc++ (or static copy) whose std::exception MXNet's engine catches. */
  void* thrower = resolve(library, "_ZSt21__throw_runtime_errorPKc");
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
