/*
 * A protocol kernel written in C++ that uses std::string and exceptions inside, compiled at test
 * time twice: with -D_GLIBCXX_USE_CXX11_ABI=0 (the old std::string, as MXNet's pip wheels) and
 * with =1 (the C++11 std::string, as TVM's). Only the C struct of
 * csrc/include/bridge_cffi/protocol.h crosses the boundary, so both builds must run the same.
 *
 *   cxx_kernel_create         out[i] = in[i] * scale + offset  (float32, float32, float), where
 *                             offset is the length of the kernel's std::string label
 *   cxx_failing_create        throws inside, and reports "<label> refused scale <scale>"
 *   cxx_newer_minor_create    declares a newer minor version and a larger struct
 *   cxx_wrong_major_create    declares ABI major BRIDGE_ABI_MAJOR + 1
 *   cxx_small_struct_create   declares a struct_size too small for ABI 1.0
 *
 * describe_cxx_kernel(const std::string&) is exported with C++ linkage on purpose: its mangled
 * name carries "__cxx11" in the =1 build only, which is how the tests see the two ABIs differ.
 */
#include <atomic>
#include <cstdio>
#include <cstring>
#include <new>
#include <sstream>
#include <stdexcept>
#include <string>

#include "bridge_cffi/protocol.h"

__attribute__((visibility("default"))) std::string describe_cxx_kernel(const std::string& label) {
  return label + " (std::string ABI " + std::to_string(_GLIBCXX_USE_CXX11_ABI) + ")";
}

namespace {

struct CxxKernel {
  bridge_kernel base;  // first member: a CxxKernel* is a bridge_kernel*
  std::atomic<int> references{1};
  std::string label;
  bool fail = false;
  int64_t appended_field = 0;  // what a newer minor version might append
};

CxxKernel* self_of(bridge_kernel* base) { return reinterpret_cast<CxxKernel*>(base); }

int64_t element_count(const DLTensor* tensor) {
  int64_t count = 1;
  for (int32_t d = 0; d < tensor->ndim; ++d) count *= tensor->shape[d];
  return count;
}

void run(CxxKernel* kernel, const bridge_arg* args, int32_t num_args) {
  if (num_args != 3 || args[0].kind != BRIDGE_ARG_TENSOR || args[1].kind != BRIDGE_ARG_TENSOR ||
      args[2].kind != BRIDGE_ARG_FLOAT) {
    throw std::invalid_argument(kernel->label + ": expected (tensor, tensor, float)");
  }
  if (kernel->fail) {
    std::ostringstream message;
    message << kernel->label << " refused scale " << args[2].value.v_float64;
    throw std::runtime_error(message.str());
  }
  const DLTensor* in = args[0].value.v_tensor;
  DLTensor* out = args[1].value.v_tensor;
  if (in->dtype.code != 2 || in->dtype.bits != 32 || out->dtype.code != 2 ||
      out->dtype.bits != 32 || element_count(in) != element_count(out)) {
    throw std::invalid_argument(kernel->label + ": expected two float32 tensors of one size");
  }
  const float* source = reinterpret_cast<const float*>(static_cast<const char*>(in->data) +
                                                       in->byte_offset);
  float* target = reinterpret_cast<float*>(static_cast<char*>(out->data) + out->byte_offset);
  const double offset = static_cast<double>(kernel->label.size());
  const int64_t count = element_count(in);
  for (int64_t i = 0; i < count; ++i) {
    target[i] = static_cast<float>(source[i] * args[2].value.v_float64 + offset);
  }
}

// The boundary: every C++ exception stops here and becomes a code plus a C string.
int32_t cxx_invoke(bridge_kernel* self, const bridge_arg* args, int32_t num_args,
                   DLDevice /*device*/, void* /*stream*/, char* error) {
  try {
    run(self_of(self), args, num_args);
    return 0;
  } catch (const std::exception& failure) {
    std::snprintf(error, BRIDGE_ERROR_CAPACITY, "%s", failure.what());
  } catch (...) {
    std::snprintf(error, BRIDGE_ERROR_CAPACITY, "unknown C++ exception");
  }
  return 3;
}

void cxx_retain(bridge_kernel* self) { self_of(self)->references.fetch_add(1); }

void cxx_release(bridge_kernel* self) {
  if (self_of(self)->references.fetch_sub(1) == 1) delete self_of(self);
}

CxxKernel* make(const char* label, bool fail) {
  CxxKernel* kernel = new (std::nothrow) CxxKernel();
  if (kernel == nullptr) return nullptr;
  kernel->label = label;
  kernel->fail = fail;
  kernel->base.struct_size = sizeof(bridge_kernel);
  kernel->base.abi_major = BRIDGE_ABI_MAJOR;
  kernel->base.abi_minor = BRIDGE_ABI_MINOR;
  kernel->base.name = kernel->label.c_str();  // owned by the kernel, valid until release
  kernel->base.invoke = cxx_invoke;
  kernel->base.retain = cxx_retain;
  kernel->base.release = cxx_release;
  kernel->base.num_args = 3;
  return kernel;
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) bridge_kernel* cxx_kernel_create(void) {
  CxxKernel* kernel = make("cxx_scale", false);
  return kernel ? &kernel->base : nullptr;
}

__attribute__((visibility("default"))) bridge_kernel* cxx_failing_create(void) {
  CxxKernel* kernel = make("cxx_failing", true);
  return kernel ? &kernel->base : nullptr;
}

__attribute__((visibility("default"))) bridge_kernel* cxx_newer_minor_create(void) {
  CxxKernel* kernel = make("cxx_newer_minor", false);
  if (kernel == nullptr) return nullptr;
  kernel->base.abi_minor = BRIDGE_ABI_MINOR + 3;
  kernel->base.struct_size = sizeof(CxxKernel);
  kernel->appended_field = 42;
  return &kernel->base;
}

__attribute__((visibility("default"))) bridge_kernel* cxx_wrong_major_create(void) {
  CxxKernel* kernel = make("cxx_wrong_major", false);
  if (kernel == nullptr) return nullptr;
  kernel->base.abi_major = BRIDGE_ABI_MAJOR + 1;
  return &kernel->base;
}

__attribute__((visibility("default"))) bridge_kernel* cxx_small_struct_create(void) {
  CxxKernel* kernel = make("cxx_small_struct", false);
  if (kernel == nullptr) return nullptr;
  kernel->base.struct_size = 8;
  return &kernel->base;
}

}  // extern "C"
