"""The probe's exit-code policy: what the verdicts make `abi-checks` return."""

from __future__ import annotations

from abi_checks.facts import Verdict
from abi_checks.verdicts.names import BRIDGE_ASYNC

EXIT_OK, EXIT_DEGRADED, EXIT_BROKEN = 0, 1, 2


def exit_code(verdicts: list[Verdict]) -> int:
    """0 when the bridge runs async without degradation, 1 when it works degraded, else 2.

    The legacy verdict never changes the exit code: it describes a path this bridge replaces.
    """
    by_name = {v.name: v for v in verdicts}
    main = by_name.get(BRIDGE_ASYNC)
    if main is None:
        return EXIT_BROKEN
    if main.status == "ok":
        return EXIT_OK
    if main.status == "degraded":
        return EXIT_DEGRADED
    return EXIT_BROKEN
