"""bridge_cffi: run TVM (tvm-ffi) functions as asynchronous MXNet engine operations.

The boundary between MXNet, TVM and this package is pure C (csrc/include/bridge_cffi/
protocol.h), so pip wheels built by different compilers and C++ ABIs work together.
"""

from __future__ import annotations

from bridge_cffi.autograd import differentiable
from bridge_cffi.bridged_function import BridgedFunction, synchronize, to_mxnet_func
from bridge_cffi.counters import read_counters, wait_until_released
from bridge_cffi.errors import (
    BridgeEngineError,
    BridgeError,
    BridgeKernelError,
    BridgeLibraryError,
    BridgeTypeError,
    BridgeValueError,
)
from bridge_cffi.kernels import Kernel, load_c_kernel

__all__ = [
    "BridgeEngineError",
    "BridgeError",
    "BridgeKernelError",
    "BridgeLibraryError",
    "BridgeTypeError",
    "BridgeValueError",
    "BridgedFunction",
    "Kernel",
    "differentiable",
    "load_c_kernel",
    "read_counters",
    "wait_until_released",
    "synchronize",
    "to_mxnet_func",
]
