"""The --json report: Facts and verdicts as one JSON object with the keys in SCHEMA.md."""

from __future__ import annotations

import json
from typing import Any

from abi_checks.facts import Facts, Verdict, to_jsonable

#: Bump when a key is renamed or removed (adding keys keeps the version).
SCHEMA_VERSION = 1


def report_dict(mode: str, facts: Facts, verdicts: list[Verdict], code: int) -> dict[str, Any]:
    """The JSON report as a dict (keys documented in SCHEMA.md)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "mode": mode,
        "exit_code": code,
        "system": dict(facts.system),
        "libraries": {key: to_jsonable(lib) for key, lib in facts.libraries.items()},
        "dynamic": to_jsonable(facts.dynamic) if facts.dynamic is not None else None,
        "verdicts": [to_jsonable(v) for v in verdicts],
    }


def render(mode: str, facts: Facts, verdicts: list[Verdict], code: int) -> str:
    """The JSON report as text (indented, keys in a stable order)."""
    return json.dumps(report_dict(mode, facts, verdicts, code), indent=2)
