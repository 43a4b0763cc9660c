"""``python -m bridge_cffi``: the version, then the probe's verdicts for this Python."""

from __future__ import annotations

import sys


def main() -> int:
    """Print the version and the probe's one-line verdicts; exit with the probe's code."""
    from abi_checks import collect, verdicts
    from abi_checks.version import probe_version

    sys.stdout.write(f"bridge_cffi {probe_version()} (python -m abi_checks for the full report)\n")
    found = verdicts.evaluate(collect.collect())
    for verdict in found:
        first = verdict.reasons[0] if verdict.reasons else ""
        sys.stdout.write(f"  {verdict.name:<24}{verdict.status.upper():<12}{first}\n")
    return verdicts.exit_code(found)


if __name__ == "__main__":
    sys.exit(main())
