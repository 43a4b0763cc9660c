"""The verdicts' names: the `name` of each Verdict, the keys of the JSON report (SCHEMA.md)."""

from __future__ import annotations

BRIDGE_ASYNC = "bridge-async"
BRIDGE_RECORDED = "bridge-recorded-errors"
LEGACY = "legacy-mxtvmbridge"
OPERATORS = "bridge-operators"
