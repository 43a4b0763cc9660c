/* Checks a kernel struct before the bridge touches any field past its header. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/bridge_internal.h"

/* Fields of ABI 1.0: a kernel must be at least this large. */
#define KERNEL_V1_0_SIZE (offsetof(bridge_kernel, num_args) + sizeof(int32_t))

int32_t bridge_kernel_check(const bridge_kernel* kernel, char* error) {
  if (kernel == NULL) {
    return bridge_fail(error, BRIDGE_E_VALUE, "kernel: expected a bridge_kernel*, got NULL");
  }
  if (kernel->struct_size < KERNEL_V1_0_SIZE) {
    return bridge_fail(error, BRIDGE_E_KERNEL,
                       "kernel: struct_size is %u bytes, smaller than the %zu bytes of "
                       "bridge_kernel ABI %d.0; rebuild the kernel against protocol.h",
                       (unsigned)kernel->struct_size, (size_t)KERNEL_V1_0_SIZE, BRIDGE_ABI_MAJOR);
  }
  if (kernel->abi_major != BRIDGE_ABI_MAJOR) {
    return bridge_fail(error, BRIDGE_E_KERNEL,
                       "kernel: ABI major version %u is not supported (this bridge speaks %d.%d); "
                       "rebuild the kernel against this bridge's protocol.h",
                       (unsigned)kernel->abi_major, BRIDGE_ABI_MAJOR, BRIDGE_ABI_MINOR);
  }
  if (kernel->invoke == NULL || kernel->retain == NULL || kernel->release == NULL) {
    return bridge_fail(error, BRIDGE_E_KERNEL,
                       "kernel: invoke, retain and release must all be set");
  }
  if (kernel->num_args < -1) {
    return bridge_fail(error, BRIDGE_E_KERNEL, "kernel: num_args is %d; expected -1 or >= 0",
                       (int)kernel->num_args);
  }
  return BRIDGE_OK;
}

int32_t bridge_kernel_accepts_byte_offset(const bridge_kernel* kernel) {
  return (BRIDGE_KERNEL_FLAGS(kernel) & BRIDGE_KERNEL_ACCEPTS_BYTE_OFFSET) != 0;
}

const char* bridge_kernel_shown_name(const bridge_kernel* kernel) {
  /* protocol.h lets a kernel leave its name NULL; the Python side shows the same default. */
  return kernel->name != NULL ? kernel->name : "c_kernel";
}

void bridge_kernel_retain(bridge_kernel* kernel) { kernel->retain(kernel); }

void bridge_kernel_release(bridge_kernel* kernel) { kernel->release(kernel); }

char* bridge_copy_string(const char* text) {
  size_t size = strlen(text) + 1;
  char* copy = malloc(size);
  if (copy) memcpy(copy, text, size);
  return copy;
}
