/*
 * The registry of operators: what bridge_op_register copies from a spec, found again by name
 * when MXNet asks (see registry.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumers/mxnet/operators/registry.h"

/* Newest first, so a name registered again finds its latest entry; pushed lock-free. */
static _Atomic(op_entry*) g_entries = NULL;

/* A NULL-terminated copy of `count` strings. */
static char** copy_strings(const char** strings, int32_t count) {
  char** copy = calloc((size_t)count + 1, sizeof(char*));
  if (copy == NULL) return NULL;
  for (int32_t i = 0; i < count; ++i) {
    copy[i] = bridge_copy_string(strings[i]);
    if (copy[i] == NULL) return NULL; /* registration fails; the partial copy is leaked */
  }
  return copy;
}

static int32_t copy_call(const bridge_op_call* from, op_call* to, char* error) {
  to->kernel = from->kernel;
  to->num_slots = from->num_slots;
  to->slots = NULL;
  if (from->kernel == NULL) return BRIDGE_OK;
  int32_t status = bridge_kernel_check(from->kernel, error);
  if (status != BRIDGE_OK) return status;
  if (from->num_slots < 0 || from->num_slots > BRIDGE_MAX_CALL_ARGS) {
    return bridge_fail(error, BRIDGE_E_VALUE, "a kernel takes 0 to %d arguments, got %d",
                       BRIDGE_MAX_CALL_ARGS, (int)from->num_slots);
  }
  to->slots = calloc((size_t)from->num_slots + 1, sizeof(bridge_op_slot));
  if (to->slots == NULL) return bridge_fail(error, BRIDGE_E_MEMORY, "out of memory");
  memcpy(to->slots, from->slots, (size_t)from->num_slots * sizeof(bridge_op_slot));
  from->kernel->retain(from->kernel);
  return BRIDGE_OK;
}

op_entry* bridge_op_find(const char* name) {
  for (op_entry* entry = atomic_load(&g_entries); entry != NULL; entry = entry->next) {
    if (strcmp(entry->name, name) == 0) return entry;
  }
  return NULL;
}

/* ---- a node's attributes ---- */

static int32_t parse_scalar(const char* text, int32_t kind, bridge_arg* out) {
  char* end = NULL;
  errno = 0;
  out->kind = kind;
  if (kind == BRIDGE_ARG_BOOL) {
    if (!strcmp(text, "True") || !strcmp(text, "true") || !strcmp(text, "1")) {
      out->value.v_int64 = 1;
    } else if (!strcmp(text, "False") || !strcmp(text, "false") || !strcmp(text, "0")) {
      out->value.v_int64 = 0;
    } else {
      return BRIDGE_E_VALUE;
    }
    return BRIDGE_OK;
  }
  if (kind == BRIDGE_ARG_INT) {
    out->value.v_int64 = strtoll(text, &end, 10);
  } else {
    out->value.v_float64 = strtod(text, &end);
  }
  return (end == text || *end != '\0' || errno == ERANGE) ? BRIDGE_E_VALUE : BRIDGE_OK;
}

static const char* kind_name(int32_t kind) {
  return kind == BRIDGE_ARG_INT ? "an int" : kind == BRIDGE_ARG_BOOL ? "a bool" : "a float";
}

/* ---- a node's attributes ---- */

int bridge_op_parse_attributes(const op_entry* entry, int num_attrs, const char* const* keys,
                               const char* const* values, bridge_arg* scalars, char* error) {
  bool seen[entry->num_scalars > 0 ? entry->num_scalars : 1];
  memset(seen, 0, sizeof seen);
  for (int a = 0; a < num_attrs; ++a) {
    const char* key = keys[a];
    /* MXNet keeps graph annotations (__ctx_group__, __lr_mult__, ...) among the attributes. */
    if (strncmp(key, "__", 2) == 0) continue;
    int32_t found = -1;
    for (int32_t s = 0; s < entry->num_scalars; ++s) {
      if (strcmp(entry->scalar_names[s], key) == 0) found = s;
    }
    if (found < 0) {
      bridge_fail(error, BRIDGE_E_VALUE, "unknown attribute '%.60s'; its scalar attributes are:",
                  key);
      size_t used = strlen(error); /* then the list of names, appended */
      for (int32_t s = 0; s < entry->num_scalars && used < BRIDGE_ERROR_CAPACITY - 70; ++s) {
        used += (size_t)snprintf(error + used, BRIDGE_ERROR_CAPACITY - used, " %.60s",
                                 entry->scalar_names[s]);
      }
      if (entry->num_scalars == 0) snprintf(error + used, BRIDGE_ERROR_CAPACITY - used, " none");
      return 0;
    }
    if (parse_scalar(values[a], entry->scalar_kinds[found], &scalars[found]) !=
        BRIDGE_OK) {
      bridge_fail(error, BRIDGE_E_VALUE, "attribute '%.60s' must be %s, got '%.100s'", key,
                  kind_name(entry->scalar_kinds[found]), values[a]);
      return 0;
    }
    seen[found] = true;
  }
  for (int32_t s = 0; s < entry->num_scalars; ++s) {
    if (!seen[s]) {
      bridge_fail(error, BRIDGE_E_VALUE, "missing the scalar attribute '%.60s' (%s)",
                  entry->scalar_names[s], kind_name(entry->scalar_kinds[s]));
      return 0;
    }
  }
  return 1;
}


/* ---- registration ---- */

int32_t bridge_op_register(const bridge_op_spec* spec, int32_t route, char* error) {
  if (!atomic_load(&g_mx_bound)) {
    return bridge_fail(error, BRIDGE_E_STATE, "MXNet symbols are not bound yet");
  }
  if (route == BRIDGE_OP_ROUTE_CUSTOM_OP && g_mx.MXCustomOpRegister == NULL) {
    return bridge_fail(error, BRIDGE_E_SYMBOL,
                       "this MXNet does not export MXCustomOpRegister, which registering "
                       "operators needs");
  }
  if (route != BRIDGE_OP_ROUTE_CUSTOM_OP && route != BRIDGE_OP_ROUTE_EXTENSION_LIBRARY) {
    return bridge_fail(error, BRIDGE_E_VALUE, "unknown operator route %d", (int)route);
  }
  if (spec->name == NULL || spec->name[0] == '\0') {
    return bridge_fail(error, BRIDGE_E_VALUE, "an operator needs a name");
  }
  if (spec->forward.kernel == NULL) {
    return bridge_fail(error, BRIDGE_E_VALUE, "an operator needs a forward kernel");
  }
  if (spec->num_inputs < 0 || spec->num_outputs < 1 || spec->num_scalars < 0 ||
      spec->num_backward_dependencies < 0) {
    return bridge_fail(error, BRIDGE_E_VALUE,
                       "an operator needs at least one output and non-negative counts");
  }
  op_entry* entry = calloc(1, sizeof(op_entry));
  if (entry == NULL) return bridge_fail(error, BRIDGE_E_MEMORY, "out of memory");
  entry->name = bridge_copy_string(spec->name);
  entry->num_inputs = spec->num_inputs;
  entry->num_outputs = spec->num_outputs;
  entry->num_scalars = spec->num_scalars;
  entry->input_names = copy_strings(spec->input_names, spec->num_inputs);
  entry->output_names = copy_strings(spec->output_names, spec->num_outputs);
  entry->scalar_names = copy_strings(spec->scalar_names, spec->num_scalars);
  entry->scalar_kinds = calloc((size_t)spec->num_scalars + 1, sizeof(int32_t));
  entry->dependencies =
      calloc((size_t)spec->num_backward_dependencies + 1, sizeof(bridge_op_dependency));
  if (!entry->name || !entry->input_names || !entry->output_names || !entry->scalar_names ||
      !entry->scalar_kinds || !entry->dependencies) {
    return bridge_fail(error, BRIDGE_E_MEMORY, "out of memory"); /* the partial entry leaks */
  }
  for (int32_t s = 0; s < spec->num_scalars; ++s) {
    int32_t kind = spec->scalar_kinds[s];
    if (kind != BRIDGE_ARG_INT && kind != BRIDGE_ARG_FLOAT && kind != BRIDGE_ARG_BOOL) {
      return bridge_fail(error, BRIDGE_E_VALUE, "scalar %d has kind %d, not int/float/bool",
                         (int)s, (int)kind);
    }
    entry->scalar_kinds[s] = kind;
  }
  for (int32_t k = 0; k < spec->num_backward_dependencies; ++k) {
    bridge_op_dependency dependency = spec->backward_dependencies[k];
    int32_t limit = dependency.group == 1 ? spec->num_inputs : spec->num_outputs;
    if (dependency.group < 0 || dependency.group > 2 || dependency.index < 0 ||
        dependency.index >= limit) {
      return bridge_fail(error, BRIDGE_E_VALUE, "backward dependency %d is out of range",
                         (int)k);
    }
    entry->dependencies[k] = dependency;
  }
  entry->num_dependencies = spec->num_backward_dependencies;
  entry->context = spec->context;
  entry->infer_shape = spec->infer_shape;
  entry->infer_type = spec->infer_type;
  entry->route = route;
  int32_t status = copy_call(&spec->forward, &entry->forward, error);
  if (status == BRIDGE_OK) status = copy_call(&spec->backward, &entry->backward, error);
  if (status != BRIDGE_OK) return status;
  /* Published before MXNet can ask for it by name. */
  op_entry* head = atomic_load(&g_entries);
  do {
    entry->next = head;
  } while (!atomic_compare_exchange_weak(&g_entries, &head, entry));
  /* The extension-library route waits for MXLoadLib (bridge_cffi.operators calls it). */
  return route == BRIDGE_OP_ROUTE_CUSTOM_OP ? bridge_custom_op_expose(entry, error) : BRIDGE_OK;
}

op_entry* bridge_op_find_any(const void* pointer) {
  for (op_entry* entry = atomic_load(&g_entries); entry != NULL; entry = entry->next) {
    if (pointer == (const void*)entry || pointer == (const void*)&entry->backward) return entry;
  }
  return NULL;
}

op_entry* bridge_op_next_unloaded(void) {
  for (op_entry* entry = atomic_load(&g_entries); entry != NULL; entry = entry->next) {
    if (entry->route == BRIDGE_OP_ROUTE_EXTENSION_LIBRARY && !entry->loaded) return entry;
  }
  return NULL;
}
