"""Self-tests of the MXNet layout facts the engine consumer relies on (DESIGN §3, §4).

Each returns ``(confirmed, detail)``. They run in-process against the loaded MXNet; the probe
(`python -m abi_checks`) runs them in a child process so a failure there cannot hurt the caller.
"""

from __future__ import annotations

from bridge_cffi._native import ffi, lib
from bridge_cffi.errors import check, new_error_buffer
from bridge_cffi.library_binding import bind_mxnet


def _chunk(array) -> int:  # type: ignore[no-untyped-def]
    return int(
        ffi.cast("uintptr_t", lib.bridge_mxnet_chunk_word(ffi.cast("void*", array.handle.value)))
    )


def view_identity() -> tuple[bool, str]:
    """Check that the first word of an NDArrayHandle identifies its storage (engine variable).

    Views (slices, reshapes, a reshaped row) must share the word of their base array; an
    unrelated array and a copy must not.
    """
    import mxnet as mx

    bind_mxnet()
    base = mx.nd.zeros((4, 6))
    views = {
        "x[1:3]": base[1:3],
        "x[2:4]": base[2:4],
        "x.reshape(6, 4)": base.reshape((6, 4)),
        "x.reshape(24)[5:9]": base.reshape((24,))[5:9],
        "x[1]": base[1],
    }
    others = {"unrelated": mx.nd.zeros((4, 6)), "x.copy()": base.copy()}
    word = _chunk(base)
    if word == 0:
        return False, "the first word of a fresh NDArray is NULL"
    differing = [name for name, view in views.items() if _chunk(view) != word]
    if differing:
        return False, "views do not share their base array's first word: " + ", ".join(differing)
    clashing = [name for name, other in others.items() if _chunk(other) == word]
    if clashing:
        return False, "distinct arrays share the first word: " + ", ".join(clashing)
    return True, f"{len(views)} views share the base's storage word; {len(others)} others differ"


def allocation_alignment() -> tuple[int, str]:
    """The largest power of two (at most 64) dividing the data address of every fresh array.

    Kernels get data pointers aligned to this unit, so whole arrays keep byte_offset 0: MXNet
    1.6 and later allocate CPU memory on 64-byte boundaries, 1.5.1 on 16.
    """
    import ctypes

    import mxnet as mx

    arrays = [
        mx.nd.zeros((size,), dtype=dtype)
        for size in (1, 3, 17, 100, 1000, 4097, 65537)
        for dtype in ("float32", "uint8", "float64")
    ]
    mx.nd.waitall()
    alignment = 64
    for array in arrays:
        address = ctypes.c_void_p()
        mx.base.check_call(mx.base._LIB.MXNDArrayGetData(array.handle, ctypes.byref(address)))
        value = address.value or 0
        while alignment > 1 and value % alignment:
            alignment //= 2
    return alignment, f"{len(arrays)} fresh arrays all start on {alignment}-byte boundaries"


def run_context_layout() -> tuple[bool, str]:
    """Check that the engine passes a run context whose first fields are the pushed Context."""
    import mxnet as mx

    bind_mxnet()
    seen_all = []
    # Two CPU device ids: distinct values show both Context fields sit where the bridge reads
    # them (the engine normalises cpu_pinned to cpu, so device types cannot tell them apart).
    for dev_type, dev_id in ((1, 0), (1, 1)):
        target = mx.nd.zeros((1,))
        seen = ffi.new("bridge_run_context_seen*")
        error = new_error_buffer()
        check(
            lib.bridge_probe_run_context(
                ffi.cast("void*", target.handle.value), dev_type, dev_id, seen, error
            ),
            error,
            "run-context probe",
        )
        target.wait_to_read()
        if not seen.ran:
            return False, "the probe operation never ran"
        if (seen.dev_type, seen.dev_id) != (dev_type, dev_id):
            return False, (
                f"pushed Context ({dev_type}, {dev_id}) but the run context starts with "
                f"({seen.dev_type}, {seen.dev_id})"
            )
        seen_all.append(f"({seen.dev_type}, {seen.dev_id})")
    return True, "run context starts with the pushed Context: " + ", ".join(seen_all)


def engine_error_propagation() -> tuple[bool, str]:
    """Check that an error raised on the engine thread reaches Python as MXNetError."""
    import mxnet as mx
    from mxnet.base import MXNetError

    bind_mxnet()
    if lib.bridge_error_mode() != lib.BRIDGE_ERRORS_ENGINE_EXCEPTION:
        return False, "no libstdc++ thrower was found through MXNet's dependencies"
    target = mx.nd.zeros((1,))
    error = new_error_buffer()
    status = lib.bridge_probe_engine_error(ffi.cast("void*", target.handle.value), error)
    marker = "engine error propagation"
    if status != lib.BRIDGE_OK:  # NaiveEngine: the push itself reports it
        message = ffi.string(error).decode("utf-8", "replace")
        return (marker in message), f"the push returned the error: {message[:120]}"
    try:
        target.wait_to_read()
    except MXNetError as raised:
        return (marker in str(raised)), "the error arrived at wait_to_read() as MXNetError"
    return False, "the engine swallowed the error"


def error_mode() -> str:
    """``"engine-exception"`` or ``"recorded"``: how kernel errors reach Python here."""
    bind_mxnet()
    mode = lib.bridge_error_mode()
    return "engine-exception" if mode == lib.BRIDGE_ERRORS_ENGINE_EXCEPTION else "recorded"
