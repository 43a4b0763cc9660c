"""bridge_cffi: run TVM functions as asynchronous MXNet engine operations.

The boundary between MXNet, TVM and this package is pure C (``protocol.h``, installed with the
package: see :func:`get_include`), so pip wheels built by different compilers and C++ ABIs
work together. ``import bridge_cffi`` needs neither MXNet nor TVM; the first use that does
names what to install.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from bridge_cffi._version import __version__

if TYPE_CHECKING:
    # What the lazy names below are, for type checkers (users' code and our tests): never run,
    # so importing the package still loads nothing but _version.
    from bridge_cffi import errors as errors
    from bridge_cffi import facts as facts
    from bridge_cffi import mxnet as mxnet
    from bridge_cffi import native as native
    from bridge_cffi import producers as producers
    from bridge_cffi import unbuilt_tvm as unbuilt_tvm
    from bridge_cffi.direct_consumer import DirectFunction, direct
    from bridge_cffi.errors import (
        BridgeEngineError,
        BridgeError,
        BridgeKernelError,
        BridgeLibraryError,
        BridgeTypeError,
        BridgeValueError,
    )
    from bridge_cffi.include_dir import get_include
    from bridge_cffi.mxnet.autograd import differentiable
    from bridge_cffi.mxnet.counters import read_counters, wait_until_released
    from bridge_cffi.mxnet.function import BridgedFunction, synchronize
    from bridge_cffi.mxnet.operators import RegisteredOp, register_op
    from bridge_cffi.mxnet.wrap import to_mxnet_func
    from bridge_cffi.producers.kernel import Kernel, load_c_kernel

#: Where each public name lives. Loaded on first use (PEP 562), so that importing a light
#: sub-package, above all ``bridge_cffi.facts`` (which the probe imports, possibly while MXNet
#: crashes on import), runs neither the extension nor MXNet; ``autograd`` and ``operators``
#: also need MXNet itself, and say so when it is missing.
_PUBLIC = {
    "BridgedFunction": "bridge_cffi.mxnet.function",
    "synchronize": "bridge_cffi.mxnet.function",
    "to_mxnet_func": "bridge_cffi.mxnet.wrap",
    "read_counters": "bridge_cffi.mxnet.counters",
    "wait_until_released": "bridge_cffi.mxnet.counters",
    "DirectFunction": "bridge_cffi.direct_consumer",
    "direct": "bridge_cffi.direct_consumer",
    "BridgeEngineError": "bridge_cffi.errors",
    "BridgeError": "bridge_cffi.errors",
    "BridgeKernelError": "bridge_cffi.errors",
    "BridgeLibraryError": "bridge_cffi.errors",
    "BridgeTypeError": "bridge_cffi.errors",
    "BridgeValueError": "bridge_cffi.errors",
    "get_include": "bridge_cffi.include_dir",
    "Kernel": "bridge_cffi.producers.kernel",
    "load_c_kernel": "bridge_cffi.producers.kernel",
}
_NEEDS_MXNET = {
    "differentiable": "bridge_cffi.mxnet.autograd",
    "register_op": "bridge_cffi.mxnet.operators",
    "RegisteredOp": "bridge_cffi.mxnet.operators",
}
_SUBPACKAGES = ("direct_consumer", "errors", "facts", "mxnet", "native", "producers", "unbuilt_tvm")


def __getattr__(name: str) -> Any:  # noqa: ANN401 - PEP 562: lazy public names of every type
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
    elif name in _NEEDS_MXNET:
        from bridge_cffi.stack import require

        require("mxnet", f"bridge_cffi.{name}")
        value = getattr(importlib.import_module(_NEEDS_MXNET[name]), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f"bridge_cffi.{name}")
    else:
        raise AttributeError(f"module 'bridge_cffi' has no attribute {name!r}")
    globals()[name] = value
    return value


__all__ = [
    "BridgeEngineError",
    "BridgeError",
    "BridgeKernelError",
    "BridgeLibraryError",
    "BridgeTypeError",
    "BridgeValueError",
    "BridgedFunction",
    "DirectFunction",
    "Kernel",
    "RegisteredOp",
    "__version__",
    "differentiable",
    "direct",
    "get_include",
    "load_c_kernel",
    "read_counters",
    "register_op",
    "synchronize",
    "to_mxnet_func",
    "wait_until_released",
]
