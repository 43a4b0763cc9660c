/*
 * One way to take a symbol table from a library the process already loaded: used by every
 * symbols_*.c file; what each binds is listed once, in symbols.def. Nothing here is public.
 */
#ifndef BRIDGE_CFFI_SYMBOL_BINDING_H_
#define BRIDGE_CFFI_SYMBOL_BINDING_H_

#include <dlfcn.h>
#include <string.h>

#include "runtime/bridge_internal.h"

/* dlsym with dlerror cleared first, so a NULL result means "not exported". */
static inline void* bridge_resolve(void* library, const char* name) {
  dlerror();
  return dlsym(library, name);
}

/* The libraries of symbols.def, and its kinds of entry. */
enum {
  BRIDGE_LIBRARY_mxnet = 1,
  BRIDGE_LIBRARY_tvmffi = 2,
  BRIDGE_LIBRARY_tvm_packed_func = 3,
  BRIDGE_LIBRARY_cuda = 4
};
enum { BRIDGE_SYMBOL_REQUIRED = 1, BRIDGE_SYMBOL_OPTIONAL = 2, BRIDGE_SYMBOL_PROBED = 3 };

/* Bind every REQUIRED and OPTIONAL entry of symbols.def for `which` (a BRIDGE_LIBRARY_*) from
 * `library` into `table` (that library's *_symbols struct); an optional symbol not exported
 * stays NULL. A missing required symbol returns BRIDGE_E_SYMBOL naming it and `library_path`.
 * Records which entries were found (bridge_symbols_bound). */
int32_t bridge_bind_symbols(int32_t which, void* library, void* table, const char* library_path,
                            char* error);
/* Set entry `name` of `which` back to NULL in `table` and clear its capability flag (a
 * feature that needs several optional symbols, all or none). */
void bridge_forget_symbol(int32_t which, void* table, const char* name);

/* dlopen(RTLD_NOLOAD) of `library_path`: the copy the process already has, never a second.
 * On failure writes why into `error`, naming `import_hint`, and returns NULL. */
static inline void* bridge_open_loaded(const char* library_path, const char* what,
                                       const char* import_hint, char* error) {
  void* library = dlopen(library_path, RTLD_NOW | RTLD_NOLOAD);
  if (library == NULL) {
    const char* reason = dlerror();
    bridge_fail(error, BRIDGE_E_SYMBOL, "%s at %s is not loaded in this process (%s); %s", what,
                library_path, reason ? reason : "no reason given", import_hint);
  }
  return library;
}

#endif /* BRIDGE_CFFI_SYMBOL_BINDING_H_ */
