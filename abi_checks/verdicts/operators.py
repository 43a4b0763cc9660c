"""The bridge-operators verdict: which of MXNet's two C routes register_op takes here."""

from __future__ import annotations

from abi_checks import requirements
from abi_checks.facts import Facts, Verdict
from abi_checks.verdicts.findings import dedupe, verdict_reasons, verdict_status
from abi_checks.verdicts.lookups import static_of
from abi_checks.verdicts.names import OPERATORS
from abi_checks.verdicts.prerequisites import bridge_prerequisites
from abi_checks.verdicts.versions import mxnet_version


def bridge_operators(facts: Facts) -> Verdict:
    """bridge_cffi.register_op: which of MXNet's two C routes its operators take here."""
    f = bridge_prerequisites(facts)
    version = mxnet_version(facts)
    _, mx = static_of(facts, "mxnet")
    if version is not None and not f.blockers:
        route = requirements.operator_route(version)
        if route == requirements.EXTENSION_LIBRARY_ROUTE:
            f.passed.append(
                f"extension-library route: MXNet {version} implements MX_LIBRARY_VERSION "
                f"{requirements.EXTENSION_LIBRARY_VERSION}, so registered operators are native "
                "MXNet operators run inside MXNet's own engine operations"
            )
        elif mx is not None and "MXCustomOpRegister" in mx.optional_symbols_missing:
            f.blockers.append("libmxnet.so exports no MXCustomOpRegister: no operator route")
        else:
            f.degraded.append(
                f"custom-operator route (MXCustomOpRegister): MXNet {version} has no "
                f"MX_LIBRARY_VERSION {requirements.EXTENSION_LIBRARY_VERSION} extension "
                "libraries, so each operator call crosses MXNet's custom-operator worker and a "
                "completion operation (slower than a native operator at small sizes)"
            )
    return Verdict(OPERATORS, verdict_status(f), verdict_reasons(f), dedupe(f.remedy))
