"""Version rules: which MXNet can host the bridge, how register_op reaches it, TVM generations.

Shared by the bridge (it refuses an unsupported MXNet before binding) and the probe (its
verdicts say the same thing, with the same words).
"""

from __future__ import annotations

from packaging.version import Version

#: The two TVM generations, told apart by what a TVM library exports and links, never by its
#: version string (third-party builds such as hhb-tvm 3.2.3 carry their own).
PACKED_FUNC_GENERATION = "packed-func"
TVMFFI_GENERATION = "tvm-ffi"


def tvm_generation(exports_function_call: bool, needed: list[str]) -> str | None:
    """``packed-func`` for a TVM library exporting TVMFuncCall, ``tvm-ffi`` for one linking
    libtvm_ffi.so, else None (not a TVM runtime library).
    """
    if exports_function_call:
        return PACKED_FUNC_GENERATION
    if "libtvm_ffi.so" in needed:
        return TVMFFI_GENERATION
    return None


MIN_MXNET_VERSION = Version("1.5.1")

MXNET_TOO_OLD_REASON = (
    "MXNet {found} is not supported: the engine push C API first appeared in 1.5.0, and "
    "1.5.0's MXEnginePushSyncND takes NDArrayHandle instead of NDArrayHandle* (MXNet issue "
    "#15774), so a bridge built for the fixed signature would pass garbage. Install "
    "mxnet>=1.5.1 (for example `pip install mxnet==1.9.1 'numpy<1.24'`)."
)


def decode_mxnet_version(code: int) -> Version:
    """Turn MXGetVersion's integer (major*10000 + minor*100 + patch) into a Version."""
    major, rest = divmod(int(code), 10000)
    minor, patch = divmod(rest, 100)
    return Version(f"{major}.{minor}.{patch}")


def mxnet_version_problem(version: Version) -> str | None:
    """Return why this MXNet version cannot host the bridge, or None if it can."""
    if version.release < MIN_MXNET_VERSION.release:
        return MXNET_TOO_OLD_REASON.format(found=version)
    return None


#: The extension-library interface (include/mxnet/lib_api.h) the extension implements, and the
#: MXNet releases that have it (1.7 has version 7, 1.8 version 10, 1.9.x version 11).
EXTENSION_LIBRARY_VERSION = 11
EXTENSION_LIBRARY_MXNET = (Version("1.9"), Version("1.10"))
CUSTOM_OP_ROUTE, EXTENSION_LIBRARY_ROUTE = "custom_op", "extension_library"


def operator_route(version: Version) -> str:
    """How bridge_cffi.register_op reaches MXNet ``version``: as a native operator of an
    extension library where MXNet implements the interface the extension does, else through
    MXCustomOpRegister.
    """
    low, high = EXTENSION_LIBRARY_MXNET
    return EXTENSION_LIBRARY_ROUTE if low <= version < high else CUSTOM_OP_ROUTE
