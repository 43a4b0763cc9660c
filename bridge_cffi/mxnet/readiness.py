"""Gets the bridge ready once per process: bind MXNet, run the self-tests, record the results."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

from bridge_cffi.mxnet import selftests
from bridge_cffi.mxnet.binding import bind_mxnet
from bridge_cffi.native import lib

logger = logging.getLogger(__name__)

#: Set to "recorded" to keep kernel errors out of MXNet's engine and raise them at the next
#: bridged call or synchronize() instead (the fallback when no thrower is found).
ERROR_MODE_ENV = "BRIDGE_CFFI_ERROR_MODE"


@dataclass(frozen=True)
class Readiness:
    """What the self-tests confirmed in this process."""

    view_identity: tuple[bool, str]
    run_context: tuple[bool, str]
    error_propagation: tuple[bool, str]
    error_mode: str
    data_alignment: tuple[int, str]


_lock = threading.Lock()
_state: Readiness | None = None
_gpu_state: dict[int, tuple[str, str]] = {}


def ensure_ready() -> Readiness:
    """Bind MXNet and run the layout self-tests the first time; later calls are free."""
    global _state  # noqa: PLW0603 - process-wide state, bound once (under the lock)
    if _state is not None:
        return _state
    with _lock:
        if _state is not None:
            return _state
        bind_mxnet()
        alignment = selftests.allocation_alignment()
        lib.bridge_set_data_alignment(alignment[0])
        identity = selftests.view_identity()
        lib.bridge_confirm_chunk_identity(identity[0])
        run_context = selftests.run_context_layout()
        lib.bridge_confirm_run_context_layout(run_context[0])
        if os.environ.get(ERROR_MODE_ENV, "").lower() == "recorded":
            lib.bridge_use_recorded_errors()
            propagation = (False, f"{ERROR_MODE_ENV}=recorded")
        else:
            propagation = selftests.engine_error_propagation()
            if not propagation[0]:
                lib.bridge_use_recorded_errors()
        for label, (ok, detail) in (
            ("view identity", identity),
            ("run context", run_context),
            ("engine errors", propagation),
        ):
            log = logger.debug if ok else logger.warning
            log("self-test %s: %s (%s)", label, "confirmed" if ok else "NOT confirmed", detail)
        _state = Readiness(identity, run_context, propagation, selftests.error_mode(), alignment)
        return _state


def ensure_gpu_ready(device_id: int) -> tuple[str, str]:
    """Run gpu(``device_id``)'s stream self-test the first time and record it for the C side.

    Until it has run, the extension refuses GPU arrays of that device before pushing anything
    (BRIDGE_E_GPU_UNTESTED); afterwards it pushes them only when the test confirmed the stream,
    and otherwise refuses them with the test's reason. Returns ``(status, detail)`` as
    ``selftests.gpu_stream_layout`` does.
    """
    state = ensure_ready()
    known = _gpu_state.get(device_id)
    if known is not None:
        return known
    with _lock:
        known = _gpu_state.get(device_id)
        if known is not None:
            return known
        status, detail = selftests.gpu_stream_layout(device_id, state.run_context)
        confirmed = status == selftests.GPU_CONFIRMED
        lib.bridge_confirm_gpu(device_id, confirmed, detail.encode()[:255])
        log = logger.debug if confirmed else logger.warning
        log("self-test GPU stream on gpu(%d): %s (%s)", device_id, status, detail)
        _gpu_state[device_id] = (status, detail)
        return status, detail
