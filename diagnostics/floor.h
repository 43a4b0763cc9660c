/*
 * The diagnostics extension's C API (built by diagnostics/build_diagnostics.py, never installed
 * with bridge_cffi). The section between the CDEF markers is fed verbatim to cffi's cdef.
 */
#ifndef BRIDGE_CFFI_DIAGNOSTICS_FLOOR_H_
#define BRIDGE_CFFI_DIAGNOSTICS_FLOOR_H_

#include "runtime/bridge_runtime.h"

/* BRIDGE_CDEF_BEGIN diagnostics */
/* Benchmark floor: push `iterations` no-op operations reading handles[0..num_const) and
 * writing the next num_mutable handles, each taking DLPack views at push time, from C. Needs
 * this extension's own bridge_mxnet_bind first. */
int32_t bridge_floor_push_many(void** handles, int32_t num_const, int32_t num_mutable,
                               int64_t iterations, char* error);
/* BRIDGE_CDEF_END diagnostics */

#endif /* BRIDGE_CFFI_DIAGNOSTICS_FLOOR_H_ */
