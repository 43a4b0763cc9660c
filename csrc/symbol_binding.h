/*
 * One way to take a symbol table from a library the process already loaded: used by every
 * symbols_*.c file, so each lists only its table. Nothing here is public.
 */
#ifndef BRIDGE_CFFI_SYMBOL_BINDING_H_
#define BRIDGE_CFFI_SYMBOL_BINDING_H_

#include <dlfcn.h>
#include <string.h>

#include "bridge_internal.h"

/* dlsym with dlerror cleared first, so a NULL result means "not exported". */
static inline void* bridge_resolve(void* library, const char* name) {
  dlerror();
  return dlsym(library, name);
}

/* Bind `symbol` into `table`; a missing required symbol returns BRIDGE_E_SYMBOL naming it and
 * `library_path` from the enclosing function (which must have `error` and `library_path`).
 * Assigning dlsym's void* to a function pointer is what POSIX requires to work; memcpy keeps
 * the conversion free of -Wpedantic's object-to-function pointer warning. */
#define BRIDGE_BIND(table, library, symbol, required)                                    \
  do {                                                                                   \
    void* address = bridge_resolve(library, #symbol);                                    \
    if (address == NULL && (required)) {                                                 \
      return bridge_fail(error, BRIDGE_E_SYMBOL, "symbol %s not found in %s", #symbol,   \
                         library_path);                                                  \
    }                                                                                    \
    memcpy(&(table).symbol, &address, sizeof address);                                   \
  } while (0)

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
