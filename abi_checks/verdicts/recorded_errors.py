"""The bridge-recorded-errors verdict: errors recorded and raised later (when it cannot throw)."""

from __future__ import annotations

from abi_checks.facts import Facts, Verdict
from abi_checks.verdicts.findings import dedupe, verdict_reasons, verdict_status
from abi_checks.verdicts.lookups import throw_available
from abi_checks.verdicts.names import BRIDGE_RECORDED
from abi_checks.verdicts.prerequisites import bridge_prerequisites


def bridge_recorded_errors(facts: Facts) -> Verdict:
    """This bridge with errors recorded and raised later (fallback when it cannot throw)."""
    f = bridge_prerequisites(facts)
    throw = throw_available(facts)
    status = verdict_status(f)
    reasons = verdict_reasons(f)
    if status in ("ok", "degraded"):
        if throw is False:
            status = "degraded"
            active = (
                "active: the throw symbol is missing, so an error inside the engine is recorded "
                "and raised by the next bridged call or synchronize(), not at the failing wait"
            )
            reasons = [active, *(reasons if f.degraded else [])]
        else:
            fallback = "not active: available as a fallback; errors are raised inside the engine"
            reasons = [fallback, *reasons]
    return Verdict(BRIDGE_RECORDED, status, reasons, dedupe(f.remedy))
