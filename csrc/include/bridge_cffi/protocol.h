/*
 * bridge_cffi protocol: the one public contract between producers (code that runs a function
 * on DLTensors) and consumers (code that decides when it runs, such as MXNet's engine).
 *
 * Pure C. Only fixed-width integers, double, pointers, function pointers and DLPack's
 * DLTensor/DLDevice/DLDataType cross this boundary, so a producer built by any compiler with
 * any C++ ABI can be driven by a consumer built by another.
 *
 * Versioning: every struct starts with `struct_size`; fields are only ever appended. A reader
 * checks `struct_size` before touching a field and refuses a different major ABI version.
 * A different minor version is compatible: newer minors only append fields.
 *
 * The section between BRIDGE_CDEF_BEGIN and BRIDGE_CDEF_END is also fed verbatim to cffi's
 * cdef, so it holds plain declarations only (no preprocessor conditionals).
 */
#ifndef BRIDGE_CFFI_PROTOCOL_H_
#define BRIDGE_CFFI_PROTOCOL_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* DLPack's stable core layout. Declared here only when the real dlpack.h was not included
 * first; the layouts are identical across DLPack versions 0.2 to 1.x. */
#ifndef DLPACK_DLPACK_H_
#define DLPACK_DLPACK_H_
/* BRIDGE_CDEF_BEGIN dlpack */
typedef struct {
  int32_t device_type; /* 1 CPU, 2 CUDA, 3 CUDA host (pinned), ... */
  int32_t device_id;
} DLDevice;

typedef struct {
  uint8_t code; /* 0 int, 1 uint, 2 float, 4 bfloat, 6 bool */
  uint8_t bits;
  uint16_t lanes;
} DLDataType;

typedef struct {
  void* data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;
  int64_t* strides; /* NULL means compact row-major */
  uint64_t byte_offset;
} DLTensor;

typedef struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(struct DLManagedTensor* self);
} DLManagedTensor;
/* BRIDGE_CDEF_END dlpack */
#endif

/* BRIDGE_CDEF_BEGIN protocol */
/* Major version: a kernel with another major version is refused. */
#define BRIDGE_ABI_MAJOR 1
/* Minor version: fields appended since the major version; readers accept any minor.
 * 1.1 appended bridge_kernel.flags. */
#define BRIDGE_ABI_MINOR 1

/* Capacity, in bytes including the terminating NUL, of every error message buffer. */
#define BRIDGE_ERROR_CAPACITY 1024

/* What a bridge_arg holds. Values are stable; new kinds are only appended. */
#define BRIDGE_ARG_TENSOR 1 /* value.v_tensor: borrowed DLTensor*, valid during invoke */
#define BRIDGE_ARG_INT 2    /* value.v_int64 */
#define BRIDGE_ARG_FLOAT 3  /* value.v_float64 */
#define BRIDGE_ARG_BOOL 4   /* value.v_int64, 0 or 1 */
#define BRIDGE_ARG_OPAQUE 5 /* value.v_ptr: an opaque pointer passed through untouched */

/* One argument: a 16-byte tagged value (32-bit kind, 32 bits of padding, 64-bit payload). */
typedef struct {
  int32_t kind;
  int32_t reserved; /* must be zero */
  union {
    int64_t v_int64;
    double v_float64;
    void* v_ptr;
    DLTensor* v_tensor;
  } value;
} bridge_arg;

/*
 * A kernel: anything that can run on DLTensor arguments.
 *
 * Ownership: the kernel is reference counted through retain/release. Whoever hands a kernel
 * to a consumer keeps one reference; the consumer calls retain for every pending operation
 * and release once it ran. The kernel frees itself when its count reaches zero.
 */
typedef struct bridge_kernel {
  /* sizeof(bridge_kernel) as the producer compiled it. Always the first field. */
  uint32_t struct_size;
  /* BRIDGE_ABI_MAJOR and BRIDGE_ABI_MINOR the producer was compiled against. */
  uint16_t abi_major;
  uint16_t abi_minor;
  /* NUL-terminated name shown by profilers; owned by the kernel, valid until release. */
  const char* name;
  /*
   * Run the kernel. `args` holds `num_args` arguments, valid during the call only. `device`
   * is where the tensors live; `stream` is the device stream to run on (NULL on CPU).
   * Returns 0 on success. On failure returns non-zero and writes a NUL-terminated message of
   * at most BRIDGE_ERROR_CAPACITY bytes into `error`. May be called from any thread, and
   * concurrently; must not throw exceptions or longjmp out.
   */
  int32_t (*invoke)(struct bridge_kernel* self, const bridge_arg* args, int32_t num_args,
                    DLDevice device, void* stream, char* error);
  /* Add one reference. Thread-safe. */
  void (*retain)(struct bridge_kernel* self);
  /* Drop one reference; frees the kernel at zero. Thread-safe, callable from any thread. */
  void (*release)(struct bridge_kernel* self);
  /* Number of arguments the kernel takes, or -1 when it is not known in advance. */
  int32_t num_args;
  /* Since ABI 1.1: BRIDGE_KERNEL_* bits. A reader looks at it only when abi_minor >= 1 (the
   * field sits in what was padding in 1.0, so struct_size alone cannot tell). */
  uint32_t flags;
} bridge_kernel;

/* flags: the kernel reads every tensor at data + byte_offset, with any byte_offset a view can
 * have. Without it, a consumer hands over tensors with byte_offset 0 only: a view whose data
 * is not aligned is staged through an aligned copy (copied in before invoke, and copied back
 * after it for written arrays). TVM's default buffers need byte_offset 0. */
#define BRIDGE_KERNEL_ACCEPTS_BYTE_OFFSET 1u
/* BRIDGE_CDEF_END protocol */

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* BRIDGE_CFFI_PROTOCOL_H_ */
