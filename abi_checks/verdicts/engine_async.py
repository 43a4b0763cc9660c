"""The bridge-async verdict: this bridge, pushing work to MXNet's engine, raising errors in it."""

from __future__ import annotations

from abi_checks import requirements
from abi_checks.facts import Facts, Verdict
from abi_checks.verdicts.findings import dedupe, verdict_reasons, verdict_status
from abi_checks.verdicts.lookups import static_of, throw_available
from abi_checks.verdicts.names import BRIDGE_ASYNC
from abi_checks.verdicts.prerequisites import bridge_prerequisites


def bridge_async(facts: Facts) -> Verdict:
    """This bridge, pushing work to MXNet's engine and raising errors inside it."""
    f = bridge_prerequisites(facts)
    throw = throw_available(facts)
    dyn = facts.dynamic
    if throw is False:
        f.degraded.append(
            f"{requirements.ENGINE_THROW_SYMBOL} is not resolvable from libmxnet.so: errors are "
            "recorded and raised at the next bridged call or synchronize() (bridge-recorded-errors)"
        )
    elif throw:
        f.passed.append(
            "libstdc++'s __throw_runtime_error is resolvable: errors reach MXNet's engine"
        )
    if dyn and dyn.bridge_error_mode == "recorded" and throw:
        f.degraded.append(
            "the bridge reports recorded-error mode although the throw symbol resolves"
        )
    _, mx = static_of(facts, "mxnet")
    if mx and mx.optional_symbols_missing:
        f.degraded.append(
            "optional MXNet symbols missing: "
            + requirements.what_is_degraded(mx.optional_symbols_missing)
        )
    _, ffi = static_of(facts, "tvm_ffi")
    if ffi and ffi.optional_symbols_missing:
        f.degraded.append(
            "optional tvm-ffi symbols missing: "
            + requirements.what_is_degraded(ffi.optional_symbols_missing)
        )
    if dyn and dyn.tvm_error and not dyn.tvm_ffi_error:
        f.degraded.append(
            f"import tvm fails ({dyn.tvm_error}): only already-built tvm-ffi functions can run"
        )
        _, rt = static_of(facts, "tvm_runtime")
        if rt is not None and not rt.loadable:
            f.degraded += rt.problems
            f.remedy += rt.remedies
    return Verdict(BRIDGE_ASYNC, verdict_status(f), verdict_reasons(f), dedupe(f.remedy))
