"""Self-tests of the MXNet layout facts the engine consumer relies on (DESIGN §3, §4).

Each returns ``(confirmed, detail)``. They run in-process against the loaded MXNet; the probe
(`python -m abi_checks`) runs them in a child process so a failure there cannot hurt the caller.
"""

from __future__ import annotations

from bridge_cffi.errors import BridgeError, check, new_error_buffer
from bridge_cffi.foreign_types import NDArray
from bridge_cffi.mxnet.binding import bind_cuda, bind_mxnet
from bridge_cffi.native import CData, ffi, lib

#: Outcomes of the GPU stream self-test (the probe's ``gpu`` line).
GPU_CONFIRMED = "confirmed"
GPU_NOT_CONFIRMED = "not confirmed"
NO_GPU = "no GPU"

#: cudaStream_t values that are no stream object: NULL and the legacy and per-thread default
#: stream handles (CU_STREAM_LEGACY, CU_STREAM_PER_THREAD).
_DEFAULT_STREAMS = {0: "NULL (the legacy default stream)", 1: "CU_STREAM_LEGACY",
                    2: "CU_STREAM_PER_THREAD"}
_CUDA_NOT_READY = 600


def _chunk(array: NDArray) -> int:
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


def gpu_absent_reason() -> str | None:
    """Why MXNet cannot use a GPU in this process, or None when it sees at least one."""
    import mxnet as mx

    try:
        from mxnet.runtime import Features

        if not Features().is_enabled("CUDA"):
            return "this MXNet is built without CUDA"
    except Exception:  # noqa: BLE001, S110 - no feature list (old MXNet): count devices instead
        pass
    try:
        count = mx.context.num_gpus()
    except Exception as exc:  # noqa: BLE001 - MXNet's own error is the reason
        return f"MXNet cannot count GPUs: {str(exc).splitlines()[-1] if str(exc) else exc}"
    return None if count > 0 else "MXNet sees no CUDA device"


def gpu_stream_layout(
    device_id: int = 0, run_context: tuple[bool, str] | None = None
) -> tuple[str, str]:
    """Prove, on gpu(``device_id``), where the engine's CUDA stream is (DESIGN §3, issue 10).

    Pushes one operation on the GPU and reads, on the engine thread, RunContext.stream as an
    ``mshadow::Stream<gpu>*`` and its first member as the ``cudaStream_t``, as the engine
    callback does. Confirmed when the run context names the pushed GPU, the stream is not NULL
    or a default-stream handle, the CUDA driver answers ``cuStreamQuery`` on it (done or not
    ready) and, where the driver can tell, it belongs to the engine thread's current context.

    Returns ``(status, detail)`` with status ``"confirmed"``, ``"not confirmed"`` or
    ``"no GPU"``. ``run_context`` is the CPU run-context test's result when already known;
    otherwise that test is run (and its outcome recorded) first.
    """
    import mxnet as mx

    bind_mxnet()
    absent = gpu_absent_reason()
    if absent is not None:
        return NO_GPU, absent
    if run_context is None:
        run_context = run_context_layout()
        lib.bridge_confirm_run_context_layout(run_context[0])
    if not run_context[0]:
        return GPU_NOT_CONFIRMED, f"the run-context prefix is not confirmed ({run_context[1]})"
    try:
        bind_cuda()
    except BridgeError as exc:
        return GPU_NOT_CONFIRMED, str(exc)
    try:
        target = mx.nd.empty((1,), ctx=mx.gpu(device_id))
        seen = ffi.new("bridge_gpu_stream_seen*")
        error = new_error_buffer()
        check(
            lib.bridge_probe_gpu_stream(
                ffi.cast("void*", target.handle.value), device_id, seen, error
            ),
            error,
            "GPU stream probe",
        )
        target.wait_to_read()
    except Exception as exc:  # noqa: BLE001 - MXNet's or the bridge's error is the finding
        return GPU_NOT_CONFIRMED, f"the GPU probe operation failed: {exc}"
    return _judge_gpu_stream(device_id, seen)


def _judge_gpu_stream(device_id: int, seen: CData) -> tuple[str, str]:
    if not seen.ran:
        return GPU_NOT_CONFIRMED, "the GPU probe operation never ran"
    if (seen.dev_type, seen.dev_id) != (2, device_id):
        return GPU_NOT_CONFIRMED, (
            f"pushed gpu({device_id}) but the run context starts with "
            f"({seen.dev_type}, {seen.dev_id})"
        )
    if seen.stream_object_is_null:
        return GPU_NOT_CONFIRMED, f"RunContext.stream is NULL on gpu({device_id})"
    stream = int(seen.stream)
    if stream in _DEFAULT_STREAMS:
        return GPU_NOT_CONFIRMED, (
            f"the cudaStream_t read from RunContext.stream is {_DEFAULT_STREAMS[stream]}, "
            "not an engine worker's stream"
        )
    if seen.query_result not in (0, _CUDA_NOT_READY):
        return GPU_NOT_CONFIRMED, (
            f"cuStreamQuery({stream:#x}) returned CUresult {seen.query_result}: not a stream "
            "of this device's context"
        )
    if seen.context_matches == 0:
        return GPU_NOT_CONFIRMED, (
            f"stream {stream:#x} belongs to another CUDA context than the engine thread's"
        )
    state = "idle" if seen.query_result == 0 else "busy"
    owner = (
        "of the engine thread's current context"
        if seen.context_matches == 1
        else "(its context not checked: no cuStreamGetCtx)"
    )
    return GPU_CONFIRMED, (
        f"gpu({device_id}): RunContext.stream -> mshadow::Stream<gpu> -> cudaStream_t "
        f"{stream:#x}, answered by cuStreamQuery ({state}), {owner}"
    )


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
