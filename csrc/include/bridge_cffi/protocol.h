/*
 * bridge_cffi protocol: the one public contract between producers (code that runs a function
 * on DLTensors) and consumers (code that decides when it runs, such as MXNet's engine).
 *
 * Pure C. Only fixed-width integers, double, pointers, function pointers and DLPack's
 * DLTensor/DLDevice/DLDataType cross this boundary, so a producer built by any compiler with
 * any C++ ABI can be driven by a consumer built by another.
 *
 * Versioning: bridge_kernel starts with `struct_size` and its ABI version; fields are only
 * ever appended, never moved or resized. A reader refuses a different major ABI version and
 * checks that a field is present (BRIDGE_KERNEL_HAS_FIELD) before touching it. A different
 * minor version is compatible: newer minors only append fields, argument kinds and flags.
 *
 * Writing a kernel needs this header only: fill in a bridge_kernel (see its fields), export a
 * factory (bridge_kernel_create, at the end), build a shared library, and hand its path to
 * bridge_cffi.to_mxnet_func or bridge_cffi.load_c_kernel.
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

/*
 * DLPack. protocol.h needs DLPack's DLDevice, DLDataType and DLTensor, and must work whether a
 * real dlpack.h is included before it, after it, or not at all:
 *
 *  - before: DLPACK_DLPACK_H_ is defined and the real declarations are used. DLPack before 0.4
 *    (MXNet 1.x ships 0.2) calls the device DLContext and the field `ctx`, which this header
 *    cannot use: that is a compile error below, not a silent misreading.
 *  - not at all, or after: this header declares what DLPack 1.1's dlpack.h declares (version
 *    macros, DLPackVersion, DLDeviceType, DLDevice, DLDataTypeCode, DLDataType, DLTensor,
 *    DLManagedTensor, DLManagedTensorVersioned and its flag bits) under DLPack's own include
 *    guard, so a dlpack.h included later is skipped without losing anything it would have
 *    declared up to 1.1. DLDevice, DLDataType, DLTensor and DLManagedTensor have had these
 *    layouts since DLPack 0.4. Code needing what a later DLPack added (1.2's exchange API,
 *    new enumerators) includes that dlpack.h first.
 *
 * One deviation: C++ sees DLDeviceType as a plain enum, where DLPack 1.x writes
 * `enum : int32_t` (this text is also cffi's, which takes no conditionals); the size is
 * checked below.
 */
#ifndef DLPACK_DLPACK_H_
#define DLPACK_DLPACK_H_
#define BRIDGE_CFFI_DECLARED_DLPACK 1 /* this header, not a real dlpack.h, declared DLPack */

#ifdef __cplusplus
#define DLPACK_EXTERN_C extern "C"
#else
#define DLPACK_EXTERN_C
#endif

#ifdef _WIN32
#ifdef DLPACK_EXPORTS
#define DLPACK_DLL __declspec(dllexport)
#else
#define DLPACK_DLL __declspec(dllimport)
#endif
#else
#define DLPACK_DLL
#endif

/* BRIDGE_CDEF_BEGIN dlpack */
/*
 * The version macros and flag bits are in cffi's section because bridge_cffi.direct reads them
 * (a versioned capsule's major version and read-only flag). cffi's cdef takes integer literals
 * only, so the bits are written as values, not as dlpack.h's `(1UL << n)`: the same values.
 */
#define DLPACK_MAJOR_VERSION 1
#define DLPACK_MINOR_VERSION 1

/* DLManagedTensorVersioned.flags bits. */
#define DLPACK_FLAG_BITMASK_READ_ONLY 1UL
#define DLPACK_FLAG_BITMASK_IS_COPIED 2UL
#define DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED 4UL

/*! \brief A DLPack version; a different major version means a different layout. */
typedef struct {
  uint32_t major;
  uint32_t minor;
} DLPackVersion;

/*! \brief Where a tensor's memory lives. */
typedef enum {
  kDLCPU = 1,
  kDLCUDA = 2,
  kDLCUDAHost = 3, /* pinned host memory (cudaMallocHost) */
  kDLOpenCL = 4,
  kDLVulkan = 7,
  kDLMetal = 8,
  kDLVPI = 9,
  kDLROCM = 10,
  kDLROCMHost = 11,
  kDLExtDev = 12,
  kDLCUDAManaged = 13,
  kDLOneAPI = 14,
  kDLWebGPU = 15,
  kDLHexagon = 16,
  kDLMAIA = 17
} DLDeviceType;

/*! \brief A device: its type and its index (0 for host memory). */
typedef struct {
  DLDeviceType device_type;
  int32_t device_id;
} DLDevice;

/*! \brief Values of DLDataType.code. */
typedef enum {
  kDLInt = 0U,
  kDLUInt = 1U,
  kDLFloat = 2U,
  kDLOpaqueHandle = 3U,
  kDLBfloat = 4U,
  kDLComplex = 5U,
  kDLBool = 6U, /* bits 8: one byte per element */
  kDLFloat8_e3m4 = 7U,
  kDLFloat8_e4m3 = 8U,
  kDLFloat8_e4m3b11fnuz = 9U,
  kDLFloat8_e4m3fn = 10U,
  kDLFloat8_e4m3fnuz = 11U,
  kDLFloat8_e5m2 = 12U,
  kDLFloat8_e5m2fnuz = 13U,
  kDLFloat8_e8m0fnu = 14U,
  kDLFloat6_e2m3fn = 15U,
  kDLFloat6_e3m2fn = 16U,
  kDLFloat4_e2m1fn = 17U
} DLDataTypeCode;

/*! \brief An element type: float32 is {kDLFloat, 32, 1}, bool {kDLBool, 8, 1}. */
typedef struct {
  uint8_t code; /* a DLDataTypeCode */
  uint8_t bits;
  uint16_t lanes;
} DLDataType;

/*! \brief A tensor, not owning its memory. Elements start at (char*)data + byte_offset. */
typedef struct {
  void* data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;   /* ndim extents */
  int64_t* strides; /* in elements; NULL means compact row-major (allowed before DLPack 1.2) */
  uint64_t byte_offset;
} DLTensor;

/*! \brief A DLTensor with the means to free it (DLPack before 1.0). */
typedef struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(struct DLManagedTensor* self);
} DLManagedTensor;

/*! \brief A DLTensor with a version, flags and the means to free it (DLPack 1.0 and later). */
typedef struct DLManagedTensorVersioned {
  DLPackVersion version;
  void* manager_ctx;
  void (*deleter)(struct DLManagedTensorVersioned* self);
  uint64_t flags;
  DLTensor dl_tensor;
} DLManagedTensorVersioned;
/* BRIDGE_CDEF_END dlpack */
#elif !defined(DLPACK_MAJOR_VERSION) && defined(DLPACK_VERSION) && DLPACK_VERSION < 040
/* DLPACK_VERSION is written in octal up to 0.5 (040 is 0.4), in decimal from 0.6 (60). */
#error "bridge_cffi/protocol.h needs DLPack 0.4 or later (DLDevice); the dlpack.h included before it is older (MXNet 1.x ships 0.2): include protocol.h first, or a newer dlpack.h"
#endif

/* BRIDGE_CDEF_BEGIN protocol */
/*! \brief Major ABI version: a consumer refuses a kernel of another major version. */
#define BRIDGE_ABI_MAJOR 1
/*!
 * \brief Minor ABI version: fields appended since the major version; a consumer accepts any
 *  minor. 1.1 appended bridge_kernel.flags.
 */
#define BRIDGE_ABI_MINOR 1

/*! \brief Size in bytes, the terminating NUL included, of the `error` buffer of invoke. */
#define BRIDGE_ERROR_CAPACITY 1024

/*
 * What a bridge_arg holds. Values are stable; new kinds are only appended, so a kernel refuses
 * (returns non-zero from invoke) a kind it does not know.
 */
#define BRIDGE_ARG_TENSOR 1 /* value.v_tensor: a borrowed DLTensor*, see invoke */
#define BRIDGE_ARG_INT 2    /* value.v_int64 */
#define BRIDGE_ARG_FLOAT 3  /* value.v_float64 */
#define BRIDGE_ARG_BOOL 4   /* value.v_int64, 0 or 1 */
#define BRIDGE_ARG_OPAQUE 5 /* value.v_ptr: an opaque pointer passed through untouched */
/*
 * Kinds from this value up are a consumer's own, for arguments on their way to becoming
 * protocol kinds (this bridge's engine consumer uses 0x10000 for an MXNet NDArrayHandle, made a
 * BRIDGE_ARG_TENSOR when the operation runs). They never reach a kernel, and the protocol's
 * own kinds stay below.
 */
#define BRIDGE_ARG_CONSUMER_FIRST 0x10000

/*! \brief One argument: a 16-byte tagged value (32-bit kind, 32 bits of zero, 64-bit payload). */
typedef struct {
  int32_t kind;     /* a BRIDGE_ARG_* value */
  int32_t reserved; /* zero; a consumer sets it so, a kernel ignores it */
  union {
    int64_t v_int64;
    double v_float64;
    void* v_ptr;
    DLTensor* v_tensor;
  } value;
} bridge_arg;

/*!
 * \brief A kernel: anything that runs on bridge_arg arguments. A producer fills one in; a
 *  consumer only reads it.
 *
 * Reading it: `struct_size`, `abi_major` and `abi_minor` first. A consumer refuses a kernel
 * whose abi_major is not BRIDGE_ABI_MAJOR, whose struct_size is below ABI 1.0's fields
 * (offsetof(bridge_kernel, num_args) + sizeof(int32_t)), whose invoke, retain or release is
 * NULL, or whose num_args is below -1; it reads a field appended after 1.0 only when
 * BRIDGE_KERNEL_HAS_FIELD says it is there (flags: through BRIDGE_KERNEL_FLAGS).
 *
 * Ownership: reference counted through retain and release, starting at one reference owned
 * by whoever created the kernel (for a library, the caller of its factory, see
 * bridge_kernel_create below). A consumer that keeps the kernel beyond the call that handed it
 * over (a pending operation, a call plan, a registered operator) calls retain for each use it
 * keeps and release when that use is over; the last release, which may come on any thread and
 * after the object that handed the kernel over is gone, frees the kernel. The kernel's code
 * must stay loaded while any reference is held (this bridge never unloads a kernel library).
 */
typedef struct bridge_kernel {
  /*! \brief sizeof(bridge_kernel) (or of a larger struct beginning with it) as the producer
   *  compiled it. Always the first field. */
  uint32_t struct_size;
  /*! \brief BRIDGE_ABI_MAJOR the producer was compiled against. */
  uint16_t abi_major;
  /*! \brief BRIDGE_ABI_MINOR the producer was compiled against. */
  uint16_t abi_minor;
  /*!
   * \brief NUL-terminated name shown in MXNet's profiler and in error messages, owned by the
   *  kernel and valid until its last release. May be NULL: the consumer then shows a name of
   *  its own ("c_kernel" in this bridge) or one its user gave.
   */
  const char* name;
  /*!
   * \brief Run the kernel once.
   *
   * \param self The kernel.
   * \param args `num_args` arguments, valid until invoke returns. Tensor arguments are
   *  borrowed: the DLTensor structs and their shape and strides arrays are valid until invoke
   *  returns; the memory at `data` stays reserved for this call until the work invoke enqueued
   *  on `stream` is finished (the consumer waits for that before anything else touches it).
   *  What the tensors hold:
   *   - every tensor is on `device` (a consumer refuses calls mixing devices);
   *   - strides is NULL (compact row-major: MXNet exports every array and view so); a kernel
   *     that handles only compact tensors refuses non-NULL strides that are not compact;
   *   - the elements start at (char*)data + byte_offset, which is a multiple of the element
   *     size. With BRIDGE_KERNEL_ACCEPTS_BYTE_OFFSET set, `data` is the view's address aligned
   *     down to the array allocator's alignment (64 bytes in MXNet; 16 in MXNet 1.5.1) and
   *     byte_offset holds the rest. Without it, byte_offset is 0 wherever the consumer can
   *     stage: a misaligned view then arrives as a 64-byte aligned copy (copied back after
   *     invoke if the argument is written). Where it cannot (GPU views on a CUDA driver
   *     without stream-ordered allocation, before 11.2), byte_offset may still be non-zero,
   *     and a kernel that cannot read it returns an error;
   *   - bool tensors arrive as DLPack bool, {kDLBool, 8, 1}: one byte per element, 0 or 1
   *     (MXNet exports its bool as {kDLUInt, 1, 1}; the consumer rewrites that). Other MXNet
   *     types: float16 {kDLFloat, 16}, bfloat16 {kDLBfloat, 16}, int8/uint8/int32/int64,
   *     float32/float64;
   *   - aliasing: one array passed at several positions arrives as one DLTensor per position
   *     whose memory is the same or overlaps, so a kernel must be correct (or refuse) when an
   *     input and an output overlap. Conversely, views of one array handed to one call may be
   *     staged separately, so a kernel must not rely on two positions aliasing either: a
   *     write through one position need not be visible through another during the call;
   *   - a tensor with zero elements may have any `data`, NULL included: do not dereference it.
   * \param num_args The number of arguments. When the kernel's num_args is not -1, a consumer
   *  calls invoke only with that many (this bridge refuses other counts at the call).
   * \param device The device of the tensor arguments; {kDLCPU, 0} when none is a tensor.
   * \param stream For kDLCUDA: the CUDA stream (a cudaStream_t, i.e. CUstream) of the MXNet
   *  engine operation, never the default stream; the calling thread's current CUDA context is
   *  the device's. The kernel enqueues all its device work on it and may return before that
   *  work finishes: the consumer synchronizes the stream after invoke and before the
   *  operation completes, and a CUDA error found then fails the operation. NULL on the CPU.
   * \param error A buffer of BRIDGE_ERROR_CAPACITY bytes holding "" on entry, never NULL. On
   *  failure the kernel writes a message there, NUL-terminated within the capacity (e.g.
   *  snprintf(error, BRIDGE_ERROR_CAPACITY, ...)), preferably one line (the consumer turns
   *  newlines into spaces); left empty, the consumer reports "the kernel reported an error
   *  without a message". Ignored on success.
   * \return 0 on success; any other value on failure. A consumer does not interpret the value
   *  (it reports `error`): this bridge raises MXNetError at the first wait on the operation's
   *  outputs, or at the call under NaiveEngine.
   * \note Threads: called on a thread that does not hold Python's GIL: an MXNet engine worker
   *  thread for bridged calls (under MXNet's NaiveEngine, the calling thread, the GIL released);
   *  MXNet's custom-operator worker, or the engine operation running the operator, for
   *  registered operators. Calls may run concurrently, on several threads, for one kernel. A kernel that needs Python takes the GIL itself (PyGILState_Ensure). It must
   *  not wait on MXNet (it runs inside an engine operation: a wait deadlocks), and must not
   *  throw a C++ exception or longjmp out of invoke.
   */
  int32_t (*invoke)(struct bridge_kernel* self, const bridge_arg* args, int32_t num_args,
                    DLDevice device, void* stream, char* error);
  /*!
   * \brief Add one reference. Thread-safe (an atomic increment), callable from any thread.
   * \param self The kernel.
   */
  void (*retain)(struct bridge_kernel* self);
  /*!
   * \brief Drop one reference; the last one frees the kernel. Thread-safe, callable from any
   *  thread, including an engine thread after every Python object is gone.
   * \param self The kernel; not to be used by the caller afterwards.
   */
  void (*release)(struct bridge_kernel* self);
  /*! \brief Number of arguments the kernel takes, or -1 when it is not known in advance. */
  int32_t num_args;
  /*!
   * \brief Since ABI 1.1: BRIDGE_KERNEL_* bits. Read it through BRIDGE_KERNEL_FLAGS: on 64-bit
   *  targets it sits in what was tail padding in 1.0, so a 1.0 kernel's struct_size covers it
   *  while its content is undefined; abi_minor >= 1 tells.
   */
  uint32_t flags;
} bridge_kernel;

/*!
 * \brief Flag: the kernel reads every tensor at data + byte_offset, whatever byte_offset a
 *  view has. Without it, a consumer stages misaligned views where it can (see invoke's
 *  `args`). TVM's default buffers need byte_offset 0 and so do not set it.
 */
#define BRIDGE_KERNEL_ACCEPTS_BYTE_OFFSET 1u
/* BRIDGE_CDEF_END protocol */

/*!
 * \brief Whether `field` of bridge_kernel lies within the kernel's struct_size, i.e. whether
 *  the producer's struct has it. For fields appended from ABI 1.2 on, this alone tells;
 *  `flags` (1.1) also needs abi_minor >= 1, see BRIDGE_KERNEL_FLAGS.
 * \param kernel A const bridge_kernel* whose header fields were checked.
 * \param field A field name of bridge_kernel.
 * \return Non-zero when present.
 */
#define BRIDGE_KERNEL_HAS_FIELD(kernel, field)                                                  \
  ((size_t)(kernel)->struct_size >=                                                             \
   offsetof(bridge_kernel, field) + sizeof(((const bridge_kernel*)0)->field))

/*!
 * \brief The kernel's flags, 0 for a kernel older than ABI 1.1.
 * \param kernel A const bridge_kernel* whose header fields were checked.
 * \return The BRIDGE_KERNEL_* bits it set.
 */
#define BRIDGE_KERNEL_FLAGS(kernel)                                                             \
  ((kernel)->abi_minor >= 1 && BRIDGE_KERNEL_HAS_FIELD(kernel, flags) ? (kernel)->flags : 0u)

/*
 * The factory. A shared library of kernels exports, with C linkage and default visibility,
 *
 *     bridge_kernel* bridge_kernel_create(void);
 *
 * (other names work too: bridge_cffi.load_c_kernel(path, symbol)). The bridge loads the
 * library with RTLD_NOW | RTLD_NODELETE and never unloads it, and recognises a path handed to
 * to_mxnet_func as a kernel library by this symbol. The declaration below gives the definition
 * C linkage and default visibility in C++ and under -fvisibility=hidden.
 */
#if defined(__GNUC__) || defined(__clang__)
#define BRIDGE_KERNEL_EXPORT __attribute__((visibility("default")))
#elif defined(_WIN32)
#define BRIDGE_KERNEL_EXPORT __declspec(dllexport)
#else
#define BRIDGE_KERNEL_EXPORT
#endif
/*! \brief The default factory symbol's name. */
#define BRIDGE_KERNEL_FACTORY_SYMBOL "bridge_kernel_create"

/*!
 * \brief The type of a factory.
 * \return A new kernel holding one reference, owned by the caller (load_c_kernel hands it to
 *  a bridge_cffi.Kernel, which releases it when collected), or NULL on failure. Called on the
 *  loading Python thread, once per load.
 */
typedef bridge_kernel* (*bridge_kernel_factory)(void);

/*! \brief The default factory, defined by a kernel library, never by the bridge. */
BRIDGE_KERNEL_EXPORT bridge_kernel* bridge_kernel_create(void);

/* The layout is the ABI: a build where it differs (-fshort-enums, a packing pragma) fails here
 * rather than passing arguments a consumer misreads. */
#ifdef __cplusplus
#define BRIDGE_STATIC_ASSERT(condition, message) static_assert(condition, message)
#else
#define BRIDGE_STATIC_ASSERT(condition, message) _Static_assert(condition, message)
#endif
BRIDGE_STATIC_ASSERT(sizeof(DLDevice) == 8, "DLDevice must be 8 bytes (two 32-bit fields)");
BRIDGE_STATIC_ASSERT(sizeof(DLDataType) == 4, "DLDataType must be 4 bytes");
BRIDGE_STATIC_ASSERT(sizeof(bridge_arg) == 16 && offsetof(bridge_arg, value) == 8,
                     "bridge_arg must be 16 bytes with its payload at offset 8");
BRIDGE_STATIC_ASSERT(offsetof(bridge_kernel, name) == 8, "bridge_kernel's header moved");

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* BRIDGE_CFFI_PROTOCOL_H_ */
