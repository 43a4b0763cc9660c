/*
 * The bind list of every symbols_*.c file and the capability flags, both generated from
 * symbols.def: the same table abi_checks/requirements.py reads, so the probe requires exactly
 * what the bind requires.
 */
#include <stddef.h>
#include <string.h>

#include "runtime/symbol_binding.h"

/* The table type each library's entries are bound into. */
#define BRIDGE_TABLE_mxnet mx_symbols
#define BRIDGE_TABLE_tvmffi tvmffi_symbols
#define BRIDGE_TABLE_tvm_packed_func tvm_legacy_symbols
#define BRIDGE_TABLE_cuda cuda_symbols

/* Where an entry lands in its table; PROBED entries are never bound (no field). */
#define BRIDGE_SLOT_REQUIRED(library, name) offsetof(BRIDGE_TABLE_##library, name)
#define BRIDGE_SLOT_OPTIONAL(library, name) offsetof(BRIDGE_TABLE_##library, name)
#define BRIDGE_SLOT_PROBED(library, name) BRIDGE_SLOT_NONE
#define BRIDGE_SLOT_NONE ((size_t)-1)

typedef struct {
  int32_t library;
  int32_t kind;
  const char* name;
  size_t slot;
} bridge_symbol_entry;

static const bridge_symbol_entry k_symbols[] = {
#define BRIDGE_SYMBOL(library, name, kind, since, why) \
  {BRIDGE_LIBRARY_##library, BRIDGE_SYMBOL_##kind, #name, BRIDGE_SLOT_##kind(library, name)},
#include "symbols.def"
#undef BRIDGE_SYMBOL
};

enum { BRIDGE_SYMBOL_COUNT = sizeof k_symbols / sizeof k_symbols[0] };
_Static_assert(BRIDGE_SYMBOL_COUNT <= 64, "capability flags are one bit per entry of a uint64");

/* How many entries of each library are bound (REQUIRED or OPTIONAL), one byte per library
 * (BRIDGE_LIBRARY_* - 1) of one constant: every field of a library's table must have its
 * entry, so a field added without one fails to compile instead of staying NULL. */
#define BRIDGE_BINDS_REQUIRED 1
#define BRIDGE_BINDS_OPTIONAL 1
#define BRIDGE_BINDS_PROBED 0
enum {
  BRIDGE_BOUND_COUNTS = 0
#define BRIDGE_SYMBOL(library, name, kind, since, why) \
  +(BRIDGE_BINDS_##kind << (8 * (BRIDGE_LIBRARY_##library - 1)))
#include "symbols.def"
#undef BRIDGE_SYMBOL
};
#define BRIDGE_BOUND_COUNT(which) ((BRIDGE_BOUND_COUNTS >> (8 * (BRIDGE_LIBRARY_##which - 1))) & 0xff)

typedef void (*bridge_any_function)(void);
/* mx_symbols has one field more: libstdc++'s thrower, resolved through MXNet's handle. */
_Static_assert(sizeof(mx_symbols) == (BRIDGE_BOUND_COUNT(mxnet) + 1) * sizeof(bridge_any_function),
               "every mx_symbols field but throw_runtime_error needs its symbols.def entry");
_Static_assert(sizeof(tvmffi_symbols) == BRIDGE_BOUND_COUNT(tvmffi) * sizeof(bridge_any_function),
               "every tvmffi_symbols field needs its symbols.def entry");
_Static_assert(sizeof(tvm_legacy_symbols) ==
                   BRIDGE_BOUND_COUNT(tvm_packed_func) * sizeof(bridge_any_function),
               "every tvm_legacy_symbols field needs its symbols.def entry");
_Static_assert(sizeof(cuda_symbols) == BRIDGE_BOUND_COUNT(cuda) * sizeof(bridge_any_function),
               "every cuda_symbols field needs its symbols.def entry");

/* Bit i: entry i of symbols.def was found by a bind that succeeded. */
static atomic_uint_fast64_t g_symbols_bound;

int32_t bridge_bind_symbols(int32_t which, void* library, void* table,
                            const char* library_path, char* error) {
  uint64_t found = 0;
  for (int32_t i = 0; i < BRIDGE_SYMBOL_COUNT; ++i) {
    const bridge_symbol_entry* entry = &k_symbols[i];
    if (entry->library != which || entry->slot == BRIDGE_SLOT_NONE) continue;
    void* address = bridge_resolve(library, entry->name);
    if (address == NULL && entry->kind == BRIDGE_SYMBOL_REQUIRED) {
      return bridge_fail(error, BRIDGE_E_SYMBOL, "symbol %s not found in %s", entry->name,
                         library_path);
    }
    /* POSIX requires a dlsym result to convert to a function pointer; memcpy keeps the
     * conversion free of -Wpedantic's object-to-function pointer warning. */
    memcpy((char*)table + entry->slot, &address, sizeof address);
    if (address != NULL) found |= UINT64_C(1) << i;
  }
  atomic_fetch_or(&g_symbols_bound, found);
  return BRIDGE_OK;
}

void bridge_forget_symbol(int32_t which, void* table, const char* name) {
  for (int32_t i = 0; i < BRIDGE_SYMBOL_COUNT; ++i) {
    const bridge_symbol_entry* entry = &k_symbols[i];
    if (entry->library != which || entry->slot == BRIDGE_SLOT_NONE) continue;
    if (strcmp(entry->name, name) != 0) continue;
    memset((char*)table + entry->slot, 0, sizeof(bridge_any_function));
    atomic_fetch_and(&g_symbols_bound, ~(UINT64_C(1) << i));
  }
}

uint64_t bridge_symbols_bound(void) { return atomic_load(&g_symbols_bound); }

int32_t bridge_symbol_count(void) { return BRIDGE_SYMBOL_COUNT; }

const char* bridge_symbol_name(int32_t index) {
  return index >= 0 && index < BRIDGE_SYMBOL_COUNT ? k_symbols[index].name : NULL;
}
