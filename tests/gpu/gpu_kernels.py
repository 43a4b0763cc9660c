"""GPU kernels the GPU tests and the GPU benchmark bridge, built on the machine that runs them.

- ``seed_cuda(dtype)``: the seed's ``(x + y) * scale`` built by ``tvm.build`` for CUDA (sm_90
  by default, ``BRIDGE_CFFI_CUDA_ARCH`` to change) by examples/seed_example_gpu.py, as MXNet's
  own test_tvm_bridge.py does.
- ``inline_module()``: tvm-ffi CUDA kernels built by ``tvm_ffi.cpp.load_inline``; each launches
  on the stream tvm-ffi's environment holds (``TVMFFIEnvGetStream``), which the bridge sets to
  the engine's stream around the call.
- ``c_copy_kernel()``: a C protocol kernel (c_kernels/cuda_copy_kernel.c) that copies one GPU
  array into another with the driver's ``cuMemcpyDtoDAsync`` on the stream it is given.
"""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ARCH = os.environ.get("BRIDGE_CFFI_CUDA_ARCH", "sm_90")


@cache
def seed_cuda(dtype: str = "float32") -> Any:  # a tvm runtime Module
    """The seed's GPU kernel, examples/seed_example_gpu.py's own build; args (x, y, zz, scale)."""
    import runpy

    example = runpy.run_path(str(HERE.parent.parent / "examples" / "seed_example_gpu.py"),
                             run_name="seed_example_gpu")
    return example["build_scaled_add_cuda"](dtype, ARCH)


CUDA_SOURCE = r"""
#include <cstdint>
#include <string>

#include <cuda_runtime.h>
#include <tvm/ffi/extra/c_env_api.h>

namespace {
// The stream the caller put in tvm-ffi's environment for this device: the engine's.
cudaStream_t stream_of(tvm::ffi::TensorView t) {
  DLDevice device = t.device();
  return static_cast<cudaStream_t>(TVMFFIEnvGetStream(device.device_type, device.device_id));
}
template <typename T>
T* at(tvm::ffi::TensorView t) {
  return reinterpret_cast<T*>(static_cast<char*>(t.data_ptr()) + t.byte_offset());
}
void check_launch(const char* what) {
  cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess) {
    TVM_FFI_THROW(RuntimeError) << what << ": launch failed: " << cudaGetErrorString(status);
  }
}
void check_f32(tvm::ffi::TensorView t, const char* what) {
  DLDataType f32{kDLFloat, 32, 1};
  if (t.ndim() != 1 || t.dtype() != f32 || t.device().device_type != kDLCUDA) {
    TVM_FFI_THROW(TypeError) << what << ": expected a 1-D float32 CUDA tensor";
  }
}
int blocks_for(int64_t n) { return static_cast<int>((n + 255) / 256); }

__device__ uint64_t now_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}
__global__ void slow_fill_kernel(float* out, int64_t n, float value, int64_t ns) {
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  uint64_t start = now_ns();
  while (now_ns() - start < static_cast<uint64_t>(ns)) {
  }
  if (i < n) out[i] = value;
}
__global__ void scale_kernel(const float* in, float* out, int64_t n, float s) {
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) out[i] = in[i] * s;
}
__global__ void add_kernel(const float* x, const float* y, float* z, int64_t n) {
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) z[i] = x[i] + y[i];
}
__global__ void increment_kernel(float* z, int64_t n) {
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) z[i] += 1.0f;
}
__global__ void write_value_kernel(int64_t* out, int64_t value) { out[0] = value; }
__global__ void fault_kernel(float* out) {
  *reinterpret_cast<volatile float*>(static_cast<uintptr_t>(0x10)) = 1.0f;
  out[0] = 1.0f;
}
}  // namespace

// out[:] = value, after spinning `ns` nanoseconds on the GPU: a slow kernel.
void slow_fill(tvm::ffi::TensorView out, double value, int64_t ns) {
  check_f32(out, "slow_fill");
  int64_t n = out.size(0);
  slow_fill_kernel<<<blocks_for(n), 256, 0, stream_of(out)>>>(at<float>(out), n,
                                                              static_cast<float>(value), ns);
  check_launch("slow_fill");
}

// out = x * s
void scale_into(tvm::ffi::TensorView x, tvm::ffi::TensorView out, double s) {
  check_f32(x, "scale_into");
  check_f32(out, "scale_into");
  int64_t n = out.size(0);
  scale_kernel<<<blocks_for(n), 256, 0, stream_of(out)>>>(at<const float>(x), at<float>(out), n,
                                                          static_cast<float>(s));
  check_launch("scale_into");
}

// z = x + y
void add_into(tvm::ffi::TensorView x, tvm::ffi::TensorView y, tvm::ffi::TensorView z) {
  int64_t n = z.size(0);
  add_kernel<<<blocks_for(n), 256, 0, stream_of(z)>>>(at<const float>(x), at<const float>(y),
                                                       at<float>(z), n);
  check_launch("add_into");
}

// z += 1 (read and written)
void increment(tvm::ffi::TensorView z) {
  check_f32(z, "increment");
  int64_t n = z.size(0);
  increment_kernel<<<blocks_for(n), 256, 0, stream_of(z)>>>(at<float>(z), n);
  check_launch("increment");
}

// out[0] = the stream this call was handed (as an int64), written by a kernel on that stream.
void record_stream(tvm::ffi::TensorView out) {
  cudaStream_t stream = stream_of(out);
  write_value_kernel<<<1, 1, 0, stream>>>(at<int64_t>(out),
                                          static_cast<int64_t>(reinterpret_cast<intptr_t>(stream)));
  check_launch("record_stream");
}

// A launch the runtime refuses (4096 threads per block): the kernel raises, nothing runs.
void bad_launch(tvm::ffi::TensorView out) {
  scale_kernel<<<1, 4096, 0, stream_of(out)>>>(at<const float>(out), at<float>(out), 1, 1.0f);
  check_launch("bad_launch");
}

// Writes to address 0x10 on the GPU: the launch succeeds, the stream then fails (sticky).
void fault(tvm::ffi::TensorView out) {
  fault_kernel<<<1, 1, 0, stream_of(out)>>>(at<float>(out));
  check_launch("fault");
}
"""

INLINE_FUNCTIONS = [
    "slow_fill", "scale_into", "add_into", "increment", "record_stream", "bad_launch", "fault",
]


@cache
def inline_module() -> Any:  # a tvm_ffi Module
    """The tvm-ffi CUDA kernels above, built once per machine (tvm-ffi caches the build)."""
    from tvm_ffi import cpp

    # tvm-ffi detects the arch from nvidia-smi's GPU names, which miss Hopper: say it.
    os.environ.setdefault("TVM_FFI_CUDA_ARCH_LIST", f"{ARCH[3:-1]}.{ARCH[-1]}")
    return cpp.load_inline(
        name="bridge_cffi_gpu_kernels",
        cuda_sources=CUDA_SOURCE,
        functions=INLINE_FUNCTIONS,
        extra_cuda_cflags=[f"-arch={ARCH}"],
    )


@cache
def c_copy_kernel_library() -> Path:
    """c_kernels/cuda_copy_kernel.c compiled against the public header (gcc, C11, -Werror)."""
    import bridge_cffi

    # A fixed place on purpose: GPU runs on one machine reuse the built kernels.
    out_dir = Path(os.environ.get("BRIDGE_CFFI_GPU_BUILD", "/tmp/bridge_cffi_gpu_build"))  # noqa: S108
    out_dir.mkdir(parents=True, exist_ok=True)
    library = out_dir / "libcuda_copy_kernel.so"
    subprocess.run(
        ["gcc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
         "-I", bridge_cffi.get_include(), str(HERE / "c_kernels" / "cuda_copy_kernel.c"),
         "-o", str(library)],
        check=True, capture_output=True, text=True,
    )
    return library
