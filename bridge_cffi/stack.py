"""The libraries the bridge drives but does not depend on at install time (MXNet, numpy,
tvm-ffi): imported when first needed, and named with what to install when they are missing.

``import bridge_cffi`` works without them; the first use that needs one raises
:class:`~bridge_cffi.errors.BridgeLibraryError` instead of a bare ``ModuleNotFoundError``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from bridge_cffi.errors import BridgeLibraryError

#: What a user installs to get the stack the bridge is tested with (pins in pyproject.toml).
INSTALL_HINT = "pip install 'bridge_cffi[stack]'"


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` for ``purpose``, or raise BridgeLibraryError saying what to install."""
    try:
        return importlib.import_module(module)
    except Exception as failure:  # MXNet 1.x under numpy >= 1.24 fails with AttributeError
        raise BridgeLibraryError(
            f"{purpose} needs {module}, which cannot be imported here "
            f"({type(failure).__name__}: {failure}); install the tested stack with "
            f"`{INSTALL_HINT}` (mxnet, numpy<1.24, apache-tvm), or run `python -m abi_checks`"
        ) from failure
