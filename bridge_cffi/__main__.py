"""``python -m bridge_cffi``: the version, then the probe's verdicts for this Python.

The probe (abi_checks) runs as a child process, ``python -m abi_checks --json``: the bridge
never imports it (the probe must judge the bridge from outside, and the packages must not
import each other in a cycle), and the report's JSON form is its documented interface
(abi_checks/SCHEMA.md).
"""

from __future__ import annotations

import json
import subprocess
import sys

from bridge_cffi._version import __version__


def main() -> int:
    """Print the version and the probe's one-line verdicts; exit with the probe's code."""
    sys.stdout.write(f"bridge_cffi {__version__} (python -m abi_checks for the full report)\n")
    sys.stdout.flush()
    done = subprocess.run(
        [sys.executable, "-m", "abi_checks", "--json"], capture_output=True, text=True, check=False
    )
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        # The probe failed before it could report: show what it said, keep its exit code.
        sys.stderr.write(done.stdout + done.stderr)
        return done.returncode or 2
    for verdict in report["verdicts"]:
        reasons = verdict.get("reasons") or []
        first = reasons[0] if reasons else ""
        sys.stdout.write(f"  {verdict['name']:<24}{verdict['status'].upper():<12}{first}\n")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
