"""Dynamic layer, run in a child process: `python -m abi_checks.dynamic_child`.

Imports the libraries the way a user's process does and runs the layout self-tests. Writes
one JSON object per line to stdout, one per stage, flushed at once: if a stage crashes the
process (a segfault in a layout test, say), the parent still has every earlier stage and
knows which one was running. Nothing here is imported by the parent.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import importlib.util
import json
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

from abi_checks import requirements
from bridge_cffi.facts.process_maps import mapped_shared_objects

_RTLD_NOLOAD = 4  # glibc's value; not exposed by ctypes


def emit(stage: str, **data: object) -> None:
    """Write one stage record and flush, so it survives a later crash."""
    sys.stdout.write(json.dumps({"stage": stage, **data}) + "\n")
    sys.stdout.flush()


def run_stage(stage: str, body: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
    """Announce `stage`, run it, emit its result or the exception it raised."""
    emit("begin", name=stage)
    try:
        result = body()
    except BaseException as exc:  # noqa: BLE001 - even SystemExit is a finding, sent as data
        emit(stage, ok=False, error=f"{type(exc).__name__}: {exc}", trace=traceback.format_exc())
        return None
    emit(stage, ok=True, **result)
    return result


def mapped_libraries() -> list[str]:
    """Paths of shared objects mapped into this process (the bridge's facts read
    /proc/self/maps: one reader for the probe and the bridge).
    """
    return mapped_shared_objects()


# ---------------------------------------------------------------- MXNet


def stage_mxnet() -> dict[str, Any]:
    """Import MXNet and report its version, features and what it mapped."""
    import mxnet

    lib = mxnet.base._LIB
    code = ctypes.c_int()
    if lib.MXGetVersion(ctypes.byref(code)) != 0:
        raise RuntimeError("MXGetVersion failed")
    return {
        "version": mxnet.__version__,
        "version_code": code.value,
        "lib_path": os.path.abspath(lib._name),
        "features": _mxnet_features(lib),
        "mapped": mapped_libraries(),
    }


class _LibFeature(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("enabled", ctypes.c_bool)]


def _mxnet_features(lib: ctypes.CDLL) -> dict[str, bool]:
    if not hasattr(lib, "MXLibInfoFeatures"):
        return {}
    array = ctypes.POINTER(_LibFeature)()
    size = ctypes.c_size_t()
    if lib.MXLibInfoFeatures(ctypes.byref(array), ctypes.byref(size)) != 0:
        return {}
    return {array[i].name.decode(): bool(array[i].enabled) for i in range(size.value)}


class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device", _DLDevice),
        ("ndim", ctypes.c_int32),
        ("dtype", _DLDataType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    ]


class _DLManagedTensor(ctypes.Structure):
    pass


_DELETER = ctypes.CFUNCTYPE(None, ctypes.POINTER(_DLManagedTensor))
_DLManagedTensor._fields_ = [
    ("dl_tensor", _DLTensor),
    ("manager_ctx", ctypes.c_void_p),
    ("deleter", _DELETER),
]

#: MXNet dtype code -> (name, DLPack type code, bits). DLPack codes: 0 int, 1 uint, 2 float.
_DTYPES = {
    0: ("float32", 2, 32),
    1: ("float64", 2, 64),
    3: ("uint8", 1, 8),
    4: ("int32", 0, 32),
    6: ("int64", 0, 64),
}


def stage_dlpack() -> dict[str, Any]:
    """Compare MXNDArrayToDLPack's fields with MXNet's own shape/dtype getters."""
    import mxnet

    lib = mxnet.base._LIB
    problems: list[str] = []
    checked = 0
    for code, (name, dl_code, bits) in _DTYPES.items():
        for shape in ((7,), (2, 3, 4)):
            arr = mxnet.nd.zeros(shape, dtype=name)
            arr.wait_to_read()
            handle = arr.handle
            ndim = ctypes.c_int()
            pdata = ctypes.POINTER(ctypes.c_int)()
            if lib.MXNDArrayGetShapeEx(handle, ctypes.byref(ndim), ctypes.byref(pdata)) != 0:
                raise RuntimeError("MXNDArrayGetShapeEx failed")
            mx_shape = tuple(pdata[i] for i in range(ndim.value))
            mx_dtype = ctypes.c_int()
            if lib.MXNDArrayGetDType(handle, ctypes.byref(mx_dtype)) != 0:
                raise RuntimeError("MXNDArrayGetDType failed")
            managed = ctypes.POINTER(_DLManagedTensor)()
            if lib.MXNDArrayToDLPack(handle, ctypes.byref(managed)) != 0:
                raise RuntimeError("MXNDArrayToDLPack failed")
            try:
                t = managed.contents.dl_tensor
                dl_shape = tuple(t.shape[i] for i in range(t.ndim))
                got = (dl_shape, t.dtype.code, t.dtype.bits, t.dtype.lanes, t.device.device_type)
                want = (mx_shape, dl_code, bits, 1, 1)
                if got != want or mx_dtype.value != code or mx_shape != shape or not t.data:
                    problems.append(
                        f"{name}{shape}: DLPack {got} vs MXNet {want} (dtype {mx_dtype.value})"
                    )
            finally:
                # The managed tensor holds a reference to the array until its deleter runs.
                managed.contents.deleter(managed)
            checked += 1
    return {"ok_layout": not problems, "checked": checked, "problems": problems}


def stage_view_identity() -> dict[str, Any]:
    """DESIGN §3: the first word at an NDArrayHandle identifies the storage chunk."""
    import mxnet

    def chunk(a: Any) -> int:  # noqa: ANN401 - an mx.nd.NDArray (MXNet ships no types)
        return ctypes.cast(a.handle, ctypes.POINTER(ctypes.c_void_p))[0] or 0

    x = mxnet.nd.arange(24).reshape((4, 6))
    same = {
        "x": x,
        "x[0:2]": x[0:2],
        "x[2:4]": x[2:4],
        "x.reshape": x.reshape((6, 4)),
        "x.reshape[1]": x.reshape((6, 4))[1],
    }
    different = {"unrelated": mxnet.nd.zeros((4, 6)), "x.copy()": x.copy()}
    base = chunk(x)
    problems = [f"{k} gives another chunk word" for k, v in same.items() if chunk(v) != base]
    problems += [
        f"{k} gives the same chunk word as x" for k, v in different.items() if chunk(v) == base
    ]
    if not base:
        problems.append("the first word at the handle is NULL")
    return {"ok_layout": not problems, "problems": problems}


def stage_throw_symbol() -> dict[str, Any]:
    """Is libstdc++'s __throw_runtime_error reachable from libmxnet's dependency tree?"""
    import mxnet

    path = mxnet.base._LIB._name
    # NOLOAD: take a reference to the copy already mapped, never load a second one.
    handle = ctypes.CDLL(path, mode=_RTLD_NOLOAD | ctypes.RTLD_LOCAL)
    try:
        getattr(handle, requirements.ENGINE_THROW_SYMBOL)
        found = True
    except AttributeError:
        found = False
    return {"available": found, "library": path}


# ---------------------------------------------------------------- TVM


def stage_tvm_ffi() -> dict[str, Any]:
    """Import tvm_ffi and report its version and what it mapped."""
    import tvm_ffi

    return {"version": getattr(tvm_ffi, "__version__", None), "mapped": mapped_libraries()}


def stage_tvm() -> dict[str, Any]:
    """Import TVM and report its version and what it mapped."""
    import tvm

    return {"version": getattr(tvm, "__version__", None), "mapped": mapped_libraries()}


# ---------------------------------------------------------------- bridge self-tests


def bridge_extension_files() -> tuple[str | None, list[str]]:
    """bridge_cffi's package directory and its compiled extension files, found without
    importing it: (None, []) when bridge_cffi is not installed in this Python.
    """
    try:
        spec = importlib.util.find_spec("bridge_cffi")
    except (ImportError, ValueError):
        return None, []
    if spec is None or not spec.submodule_search_locations:
        return None, []
    package = os.path.abspath(next(iter(spec.submodule_search_locations)))
    found = [
        os.path.join(package, "_native" + suffix)
        for suffix in importlib.machinery.EXTENSION_SUFFIXES
        if os.path.isfile(os.path.join(package, "_native" + suffix))
    ]
    return package, found


def stage_bridge() -> dict[str, Any]:
    """Import bridge_cffi and run its self-tests.

    Not installed, or installed without its compiled extension: a note (the probe works
    without the bridge). Extension present but the import fails: `import_error`, a finding.
    """
    package, extensions = bridge_extension_files()
    if package is None:
        return {"available": False, "detail": "bridge_cffi is not installed in this Python"}
    if not extensions:
        return {
            "available": False,
            "detail": f"bridge_cffi at {package} has no compiled extension (_native*.so): "
            "not built yet?",
        }
    try:
        from bridge_cffi.mxnet import selftests
    except Exception as exc:  # noqa: BLE001 - any import failure is the finding
        error = f"{type(exc).__name__}: {exc}"
        return {
            "available": False,
            "import_error": error,
            "detail": f"import bridge_cffi ({package}) failed: {error}",
        }
    result: dict[str, Any] = {"available": True, "detail": "bridge_cffi.mxnet.selftests imported"}
    for name in ("run_context_layout", "view_identity"):
        func = getattr(selftests, name, None)
        if func is None:
            result[name] = {
                "ok": None, "detail": f"bridge_cffi.mxnet.selftests.{name} not available"
            }
            continue
        try:
            ok, detail = func()
            result[name] = {"ok": bool(ok), "detail": str(detail)}
        except Exception as exc:  # noqa: BLE001 - a failing self-test is a finding
            result[name] = {"ok": False, "detail": f"raised {type(exc).__name__}: {exc}"}
    gpu = getattr(selftests, "gpu_stream_layout", None)
    if gpu is None:
        result["gpu"] = {
            "status": "not run", "detail": "bridge_cffi.mxnet.selftests has no GPU test"
        }
    else:
        try:
            status, detail = gpu(0)
            result["gpu"] = {"status": str(status), "detail": str(detail)}
        except Exception as exc:  # noqa: BLE001 - a failing self-test is a finding
            result["gpu"] = {
                "status": "not confirmed",
                "detail": f"raised {type(exc).__name__}: {exc}",
            }
    error_mode = getattr(selftests, "error_mode", None)
    try:
        result["error_mode"] = str(error_mode()) if error_mode else None
    except Exception as exc:  # noqa: BLE001 - same
        result["error_mode"] = None
        result["error_mode_detail"] = f"raised {type(exc).__name__}: {exc}"
    return result


def main() -> int:
    """Run every stage in order; the order is the user's (mxnet first, then tvm)."""
    mx = run_stage("mxnet", stage_mxnet)
    if mx is not None:
        run_stage("dlpack", stage_dlpack)
        run_stage("view_identity", stage_view_identity)
        run_stage("throw_symbol", stage_throw_symbol)
    run_stage("tvm_ffi", stage_tvm_ffi)
    run_stage("tvm", stage_tvm)
    run_stage("bridge", stage_bridge)
    emit("done", mapped=mapped_libraries())
    return 0


if __name__ == "__main__":
    sys.exit(main())
