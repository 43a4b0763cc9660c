/*
 * Counters of operations and DLPack views, updated by the consumers and producers. They stay
 * in the production extension: bridge_cffi's public read_counters() and
 * wait_until_released() are built on bridge_read_counters, not only the tests.
 */
#include "runtime/bridge_internal.h"

atomic_llong g_ops_pushed = 0, g_ops_run = 0, g_ops_freed = 0, g_dlpack_taken = 0,
             g_dlpack_deleted = 0, g_kernels_alive = 0, g_views_staged = 0;

void bridge_read_counters(bridge_counters* out) {
  out->ops_pushed = atomic_load(&g_ops_pushed);
  out->ops_run = atomic_load(&g_ops_run);
  out->ops_freed = atomic_load(&g_ops_freed);
  out->dlpack_taken = atomic_load(&g_dlpack_taken);
  out->dlpack_deleted = atomic_load(&g_dlpack_deleted);
  out->kernels_alive = atomic_load(&g_kernels_alive);
  out->views_staged = atomic_load(&g_views_staged);
}
