/*
 * The operators bridge_op_register made, shared by the two ways MXNet reaches them:
 * custom_op.c (MXCustomOpRegister) and extension_library.c (MXLoadLib's C
 * functions). Nothing here is public.
 */
#ifndef BRIDGE_CFFI_OPERATOR_REGISTRY_H_
#define BRIDGE_CFFI_OPERATOR_REGISTRY_H_

#include "runtime/bridge_internal.h"

typedef struct {
  bridge_kernel* kernel; /* one reference, owned; NULL: no such direction */
  int32_t num_slots;
  bridge_op_slot* slots;
} op_call;

/* A registered operator; never freed (nodes built from it may live as long as the process). */
typedef struct op_entry {
  struct op_entry* next;
  char* name;
  int32_t num_inputs, num_outputs, num_scalars;
  char** input_names;  /* NULL-terminated, as MXNet's list callbacks return them */
  char** output_names; /* NULL-terminated */
  char** scalar_names;
  int32_t* scalar_kinds;
  op_call forward, backward;
  int32_t num_dependencies;
  bridge_op_dependency* dependencies;
  void* context;
  bridge_op_shape_fn infer_shape;
  bridge_op_type_fn infer_type;
  int32_t route;  /* BRIDGE_OP_ROUTE_*: how MXNet reaches it */
  bool loaded;    /* extension-library route: MXNet has registered it (extension_library.c) */
} op_entry;



/* The newest operator named `name`, or NULL. */
op_entry* bridge_op_find(const char* name);
/* The operator `pointer` is the address of, or of whose backward call it is the address. */
op_entry* bridge_op_find_any(const void* pointer);
/* The first operator of the extension-library route MXNet has not registered yet, or NULL. */
op_entry* bridge_op_next_unloaded(void);
/* Parse a node's attributes into `scalars` (one per entry scalar); 0 with `error` set when
 * one is unknown, missing or malformed. Keys starting with "__" are MXNet's annotations. */
int bridge_op_parse_attributes(const op_entry* entry, int num_attrs, const char* const* keys,
                               const char* const* values, bridge_arg* scalars, char* error);
/* Expose `entry` through MXCustomOpRegister (custom_op.c). */
int32_t bridge_custom_op_expose(op_entry* entry, char* error);

#endif /* BRIDGE_CFFI_OPERATOR_REGISTRY_H_ */
