/*
 * How errors leave the extension: formatted into caller buffers on the calling thread, and,
 * for kernels that fail on an engine thread, either thrown into MXNet's engine (which rethrows
 * at the next wait, as for its native operators) or recorded for the next bridged call.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "runtime/bridge_internal.h"

atomic_int g_error_mode = 0;

/* Errors recorded in BRIDGE_ERRORS_RECORDED mode: the oldest is kept, later ones counted. */
static pthread_mutex_t g_recorded_lock = PTHREAD_MUTEX_INITIALIZER;
static char g_recorded_message[BRIDGE_ERROR_CAPACITY];
static int64_t g_recorded_count = 0;
static atomic_bool g_recorded_pending = false;

bool bridge_recorded_error_pending(void) { return atomic_load(&g_recorded_pending); }

int32_t bridge_fail(char* error, int32_t code, const char* format, ...) {
  va_list args;
  va_start(args, format);
  vsnprintf(error, BRIDGE_ERROR_CAPACITY, format, args);
  va_end(args);
  return code;
}

int32_t bridge_error_mode(void) { return atomic_load(&g_error_mode); }

void bridge_use_recorded_errors(void) { atomic_store(&g_error_mode, BRIDGE_ERRORS_RECORDED); }

void bridge_record_engine_error(const char* message) {
  pthread_mutex_lock(&g_recorded_lock);
  if (g_recorded_count == 0) {
    snprintf(g_recorded_message, sizeof g_recorded_message, "%s", message);
  }
  g_recorded_count++;
  atomic_store(&g_recorded_pending, true);
  pthread_mutex_unlock(&g_recorded_lock);
}

int32_t bridge_take_recorded_error(char* error) {
  int32_t had_error = 0;
  pthread_mutex_lock(&g_recorded_lock);
  if (g_recorded_count > 0) {
    if (g_recorded_count > 1) {
      snprintf(error, BRIDGE_ERROR_CAPACITY, "%.960s (and %lld later engine errors)",
               g_recorded_message, (long long)(g_recorded_count - 1));
    } else {
      snprintf(error, BRIDGE_ERROR_CAPACITY, "%s", g_recorded_message);
    }
    g_recorded_count = 0;
    atomic_store(&g_recorded_pending, false);
    had_error = 1;
  }
  pthread_mutex_unlock(&g_recorded_lock);
  return had_error;
}

void bridge_raise_in_engine(const char* message) {
  if (atomic_load(&g_error_mode) == BRIDGE_ERRORS_ENGINE_EXCEPTION && g_mx.throw_runtime_error) {
    /* Unwinds through our C frames (built with -fexceptions) into MXNet's catch. The message
     * is copied into the exception before unwinding starts, so a stack buffer is fine. */
    g_mx.throw_runtime_error(message);
  }
  bridge_record_engine_error(message);
}
