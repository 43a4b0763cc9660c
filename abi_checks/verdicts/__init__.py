"""Verdicts: a pure function of Facts, so every rule can be tested from hand-made facts.

One module per job: `versions` and `lookups` read the facts, `prerequisites` holds the checks
every bridge verdict starts from, one module per verdict holds its rule (`engine_async`,
`recorded_errors`, `operators`, `legacy`), `findings` turns findings into a status, `prose`
the sentence parts they share, `exit_codes` the exit-code policy. The names below are the
package's interface (cli, api, bridge_cffi.__main__ and the tests use them).

Statuses, best to worst: ok, degraded (works, something is missing or slower), unavailable
(cannot run here), unsafe (would run but compute garbage or corrupt memory).
"""

from __future__ import annotations

from abi_checks.facts import Facts, Verdict
from abi_checks.verdicts.engine_async import bridge_async
from abi_checks.verdicts.exit_codes import EXIT_BROKEN, EXIT_DEGRADED, EXIT_OK, exit_code
from abi_checks.verdicts.legacy import legacy_mxtvmbridge
from abi_checks.verdicts.names import BRIDGE_ASYNC, BRIDGE_RECORDED, LEGACY, OPERATORS
from abi_checks.verdicts.operators import bridge_operators
from abi_checks.verdicts.prerequisites import blocking_reasons
from abi_checks.verdicts.recorded_errors import bridge_recorded_errors
from abi_checks.verdicts.versions import mxnet_version, tvm_version

__all__ = [
    "BRIDGE_ASYNC",
    "BRIDGE_RECORDED",
    "EXIT_BROKEN",
    "EXIT_DEGRADED",
    "EXIT_OK",
    "LEGACY",
    "OPERATORS",
    "Verdict",
    "blocking_reasons",
    "bridge_async",
    "bridge_operators",
    "bridge_recorded_errors",
    "evaluate",
    "exit_code",
    "legacy_mxtvmbridge",
    "mxnet_version",
    "tvm_version",
]


def evaluate(facts: Facts) -> list[Verdict]:
    """All verdicts, in report order."""
    return [
        bridge_async(facts),
        bridge_recorded_errors(facts),
        legacy_mxtvmbridge(facts),
        bridge_operators(facts),
    ]
