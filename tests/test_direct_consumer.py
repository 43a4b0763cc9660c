"""The direct consumer (csrc/consumers/direct.c, bridge_cffi.direct_consumer): protocol
kernels of every producer called synchronously on DLPack arrays, results checked against numpy.
"""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
import tvm_ffi

import bridge_cffi
from bridge_cffi import BridgeKernelError, BridgeTypeError, BridgeValueError
from bridge_cffi.native import ffi, lib
from kernels_tvm import scaled_add

N = 20


def inputs() -> tuple[np.typing.NDArray[np.float32], np.typing.NDArray[np.float32]]:
    rng = np.random.default_rng(3)
    return rng.uniform(size=N).astype("float32"), rng.uniform(size=N).astype("float32")


def misaligned(n: int) -> np.typing.NDArray[np.float32]:
    """A writable float32 view of n elements whose address is 4 bytes past a 64-byte line."""
    base = np.zeros(n + 32, "float32")
    start = (-base.ctypes.data % 64) // 4 + 1
    view = base[start : start + n]
    assert view.ctypes.data % 64 == 4
    return view


@pytest.fixture(scope="module")
def seed() -> bridge_cffi.DirectFunction:
    return bridge_cffi.direct(scaled_add(), const_loc=[0, 1])


def test_seed_kernel_on_numpy_arrays(seed: bridge_cffi.DirectFunction) -> None:
    x, y = inputs()
    z = np.zeros(N, "float32")
    seed(x, y, z, 2.5)
    np.testing.assert_allclose(z, (x + y) * 2.5, rtol=1e-6)


def test_seed_kernel_writes_a_misaligned_view_back_into_numpy(
    seed: bridge_cffi.DirectFunction,
) -> None:
    # TVM's default buffers need aligned data: the view goes through an aligned copy.
    x, y = inputs()
    z = misaligned(N)
    staged = bridge_cffi.read_counters()["views_staged"]
    seed(x, y, z, 3.0)
    np.testing.assert_allclose(z, (x + y) * 3.0, rtol=1e-6)
    assert bridge_cffi.read_counters()["views_staged"] > staged


def test_seed_kernel_on_mxnet_arrays_after_pending_writes(
    seed: bridge_cffi.DirectFunction,
) -> None:
    x, y = inputs()
    mx_x = mx.nd.array(x) * 2  # pending engine operations: the export waits for them
    mx_y = mx.nd.array(y) + 1
    mx_z = mx.nd.zeros((N,))
    seed(mx_x, mx_y, mx_z, 0.5)
    np.testing.assert_allclose(mx_z.asnumpy(), (x * 2 + y + 1) * 0.5, rtol=1e-6)


def test_seed_kernel_on_tvm_ffi_tensors(seed: bridge_cffi.DirectFunction) -> None:
    x, y = inputs()
    z = tvm_ffi.from_dlpack(np.zeros(N, "float32"))
    seed(tvm_ffi.from_dlpack(x), y, z, 2.0)
    np.testing.assert_allclose(np.from_dlpack(z), (x + y) * 2.0, rtol=1e-6)


def test_c_kernel_reads_a_view_through_byte_offset(c_kernel_library: Path) -> None:
    scale = bridge_cffi.direct(bridge_cffi.load_c_kernel(c_kernel_library), const_loc=[0])
    x, _ = inputs()
    source = misaligned(N)
    source[:] = x
    out = misaligned(N)
    staged = bridge_cffi.read_counters()["views_staged"]
    scale(source, out, 4.0)
    np.testing.assert_allclose(out, x * 4.0, rtol=1e-6)
    assert bridge_cffi.read_counters()["views_staged"] == staged  # it reads byte_offset


def test_aligned_only_c_kernel_gets_aligned_copies(c_kernel_library: Path) -> None:
    scale = bridge_cffi.direct(
        bridge_cffi.load_c_kernel(c_kernel_library, "aligned_only_create"), const_loc=[0]
    )
    x, _ = inputs()
    out = misaligned(N)
    scale(x, out, -1.5)  # the kernel refuses any byte_offset: it must see none
    np.testing.assert_allclose(out, x * -1.5, rtol=1e-6)


def test_c_kernel_on_mxnet_arrays(c_kernel_library: Path) -> None:
    scale = bridge_cffi.direct(bridge_cffi.load_c_kernel(c_kernel_library), const_loc=[0])
    x, _ = inputs()
    out = mx.nd.zeros((N,))
    scale(mx.nd.array(x), out, 2.0)
    np.testing.assert_allclose(out.asnumpy(), x * 2.0, rtol=1e-6)


def aligned_copy(values: np.typing.NDArray[np.float32]) -> np.typing.NDArray[np.float32]:
    """A copy of ``values`` starting on a 64-byte line."""
    base = np.zeros(values.size + 16, values.dtype)
    start = (-base.ctypes.data % 64) // values.itemsize
    view = base[start : start + values.size]
    view[:] = values
    return view


def test_tvm_ffi_function_on_numpy_and_mxnet_arrays() -> None:
    # A bare tvm_ffi.Function is taken to read byte_offset (kernels.from_tvmffi_function), so
    # 64-byte aligned arrays reach TVM's default buffers with byte_offset 0.
    f = bridge_cffi.direct(scaled_add()["main"], const_loc=[0, 1])
    x, y = inputs()
    out = aligned_copy(np.zeros(N, "float32"))
    f(aligned_copy(x), aligned_copy(y), out, 1.5)
    np.testing.assert_allclose(out, (x + y) * 1.5, rtol=1e-6)
    mx_out = mx.nd.zeros((N,))  # MXNet allocates 64-byte aligned
    f(mx.nd.array(x), mx.nd.array(y), mx_out, 1.5)
    np.testing.assert_allclose(mx_out.asnumpy(), (x + y) * 1.5, rtol=1e-6)


def test_python_callable_runs_synchronously() -> None:
    seen: list[tuple[int, float]] = []

    def record(target: object, k: int, s: float) -> None:  # noqa: ARG001 - the call's signature
        seen.append((k, s))

    bridge_cffi.direct(record)(np.zeros(N, "float32"), 7, 0.25)
    assert seen == [(7, 0.25)]


def test_capsules_are_consumed_and_deleted(seed: bridge_cffi.DirectFunction) -> None:
    # numpy's DLPack tensor holds a reference to its array until its deleter runs.
    x, y = inputs()
    z = np.zeros(N, "float32")
    before = [sys.getrefcount(a) for a in (x, y, z)]
    for _ in range(3):
        seed(x, y, z, 1.0)
    assert [sys.getrefcount(a) for a in (x, y, z)] == before


def test_wrong_argument_count_is_refused(
    seed: bridge_cffi.DirectFunction, c_kernel_library: Path
) -> None:
    x, y = inputs()
    with pytest.raises(BridgeValueError, match="takes 4 arguments, got 3"):
        seed(x, y, np.zeros(N, "float32"))
    scale = bridge_cffi.direct(bridge_cffi.load_c_kernel(c_kernel_library), const_loc=[0])
    with pytest.raises(BridgeValueError, match="c_scale: takes 3 arguments, got 2"):
        scale(x, y)


def test_non_dlpack_argument_is_refused(seed: bridge_cffi.DirectFunction) -> None:
    x, y = inputs()
    with pytest.raises(BridgeTypeError, match=r"argument #2: expected an array .* got list"):
        seed(x, y, [0.0] * N, 1.0)


def test_arrays_on_two_devices_are_refused(seed: bridge_cffi.DirectFunction) -> None:
    x, y = inputs()
    z = mx.nd.zeros((N,), ctx=mx.cpu(1))
    with pytest.raises(BridgeValueError, match=r"argument #2 is on cpu\(1\) but argument #0"):
        seed(x, y, z, 1.0)
    assert (z.asnumpy() == 0).all()


def test_read_only_array_written_is_refused(seed: bridge_cffi.DirectFunction) -> None:
    x, y = inputs()
    z = np.zeros(N, "float32")
    z.flags.writeable = False
    with pytest.raises(BridgeValueError, match="argument #2: the ndarray is read-only"):
        seed(x, y, z, 1.0)


def test_strided_array_is_refused(seed: bridge_cffi.DirectFunction) -> None:
    x, y = inputs()
    z = np.zeros(2 * N, "float32")[::2]
    with pytest.raises(BridgeValueError, match="argument #2: not compact"):
        seed(x, y, z, 1.0)


def test_kernel_errors_are_raised_at_the_call(
    seed: bridge_cffi.DirectFunction, c_kernel_library: Path
) -> None:
    failing = bridge_cffi.direct(
        bridge_cffi.load_c_kernel(c_kernel_library, "failing_kernel_create"), const_loc=[0]
    )
    x, y = inputs()
    with pytest.raises(BridgeKernelError,
                       match=r"c_failing_scale failed: scale kernel refused: 2.5"):
        failing(x, np.zeros(N, "float32"), 2.5)
    with pytest.raises(BridgeKernelError, match=r"Mismatched z.shape"):
        seed(x, y, np.zeros(N - 1, "float32"), 1.0)


class VersionedExport:
    """Exports a tvm_ffi tensor as DLPack 1.x's versioned capsule ("dltensor_versioned"), as an
    array library of DLPack >= 1.0 does; numpy 1.23 (installed) only exports "dltensor". The
    struct may be rewritten first (flags, major version) to exercise the bridge's checks.
    """

    def __init__(self, tensor: tvm_ffi.Tensor, flags: int = 0, major: int | None = None) -> None:
        self.tensor, self.flags, self.major = tensor, flags, major
        self.capsules: list[object] = []

    def __dlpack__(self) -> object:
        capsule = self.tensor.__dlpack__(max_version=(1, 0))
        pointer = ctypes.pythonapi.PyCapsule_GetPointer
        pointer.argtypes, pointer.restype = [ctypes.py_object, ctypes.c_char_p], ctypes.c_void_p
        managed = ffi.cast("DLManagedTensorVersioned*", pointer(capsule, b"dltensor_versioned"))
        managed.flags |= self.flags
        if self.major is not None:
            managed.version.major = self.major
        self.capsules.append(capsule)
        return capsule


def test_seed_kernel_on_versioned_dlpack_capsules(seed: bridge_cffi.DirectFunction) -> None:
    x, y = inputs()
    z = tvm_ffi.from_dlpack(np.zeros(N, "float32"))
    exports = [VersionedExport(tvm_ffi.from_dlpack(a)) for a in (x, y)] + [VersionedExport(z)]
    seed(*exports, 2.0)
    np.testing.assert_allclose(np.from_dlpack(z), (x + y) * 2.0, rtol=1e-6)
    # Each capsule was taken (renamed, as DLPack asks of a consumer).
    assert [repr(e.capsules[0]).split('"')[1] for e in exports] == ["used_dltensor_versioned"] * 3


def test_versioned_capsule_flagged_read_only_is_refused_only_where_written(
    seed: bridge_cffi.DirectFunction,
) -> None:
    x, y = inputs()
    z = np.zeros(N, "float32")
    read_only = lib.DLPACK_FLAG_BITMASK_READ_ONLY
    seed(VersionedExport(tvm_ffi.from_dlpack(x), flags=read_only), y, z, 1.0)  # only read
    np.testing.assert_allclose(z, x + y, rtol=1e-6)
    out = VersionedExport(tvm_ffi.from_dlpack(np.zeros(N, "float32")), flags=read_only)
    with pytest.raises(BridgeValueError, match="argument #2: the array is exported read-only"):
        seed(x, y, out, 1.0)


def test_versioned_capsule_of_another_major_version_is_refused(
    seed: bridge_cffi.DirectFunction,
) -> None:
    x, y = inputs()
    future = VersionedExport(tvm_ffi.from_dlpack(x), major=lib.DLPACK_MAJOR_VERSION + 1)
    with pytest.raises(BridgeTypeError, match=r"argument #0: DLPack major version 2, expected 1"):
        seed(future, y, np.zeros(N, "float32"), 1.0)
