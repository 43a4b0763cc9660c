"""bridge_cffi: run TVM functions as asynchronous MXNet engine operations.

The boundary between MXNet, TVM and this package is pure C (``protocol.h``, installed with the
package: see :func:`get_include`), so pip wheels built by different compilers and C++ ABIs
work together. ``import bridge_cffi`` needs neither MXNet nor TVM; the first use that does
names what to install.
"""

from __future__ import annotations

from typing import Any

from bridge_cffi._version import __version__
from bridge_cffi.direct import DirectFunction, direct
from bridge_cffi.errors import (
    BridgeEngineError,
    BridgeError,
    BridgeKernelError,
    BridgeLibraryError,
    BridgeTypeError,
    BridgeValueError,
)
from bridge_cffi.include_dir import get_include
from bridge_cffi.mxnet.counters import read_counters, wait_until_released
from bridge_cffi.mxnet.function import BridgedFunction, synchronize
from bridge_cffi.mxnet.wrap import to_mxnet_func
from bridge_cffi.producers.kernel import Kernel, load_c_kernel


def __getattr__(name: str) -> Any:
    # autograd subclasses mx.autograd.Function, operators registers with MXNet: loaded on first
    # use only, so that
    # `import bridge_cffi` works without MXNet (and says what to install when it is used).
    if name == "differentiable":
        from bridge_cffi.stack import require

        require("mxnet", "bridge_cffi.differentiable")
        from bridge_cffi.mxnet.autograd import differentiable

        return differentiable
    if name in ("register_op", "RegisteredOp"):
        from bridge_cffi.stack import require

        require("mxnet", f"bridge_cffi.{name}")
        from bridge_cffi.mxnet import operators

        return getattr(operators, name)
    raise AttributeError(f"module 'bridge_cffi' has no attribute {name!r}")


__all__ = [
    "__version__",
    "get_include",
    "BridgeEngineError",
    "BridgeError",
    "BridgeKernelError",
    "BridgeLibraryError",
    "BridgeTypeError",
    "BridgeValueError",
    "BridgedFunction",
    "DirectFunction",
    "Kernel",
    "differentiable",
    "direct",
    "load_c_kernel",
    "read_counters",
    "register_op",
    "RegisteredOp",
    "wait_until_released",
    "synchronize",
    "to_mxnet_func",
]
