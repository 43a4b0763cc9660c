"""What a cell's pytest run reports: counts and the most frequent causes, from its JUnit XML."""

from __future__ import annotations

import re
from pathlib import Path
from xml.etree import ElementTree

from venv_paths import without_venv_paths


def count_junit(report: Path) -> dict[str, int]:
    """Tests, passed, failed, errors, skipped and xfailed in one JUnit report (zeros if none)."""
    counts = {"tests": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0, "xfailed": 0}
    if not report.is_file():
        return counts
    # S314: the report is the one this runner's own pytest just wrote, not untrusted input.
    for case in ElementTree.parse(report).getroot().iter("testcase"):  # noqa: S314
        counts["tests"] += 1
        tags = {child.tag: child for child in case}
        if "error" in tags:
            counts["errors"] += 1
        elif "failure" in tags:
            counts["failed"] += 1
        elif "skipped" in tags and tags["skipped"].get("type") == "pytest.xfail":
            # A strict expected failure (e.g. mx.np on MXNet 1.5.1): not a skip, which strict
            # mode would have failed.
            counts["xfailed"] += 1
        elif "skipped" in tags:
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    return counts


_ERROR_LINE = re.compile(r"^E\s+((?:[\w.]+)(?:Error|Exception|Exit)\b.*)$", re.MULTILINE)


def _cause(text: str) -> str:
    """The last exception line of a failure, shortened so equal causes count together."""
    found = _ERROR_LINE.findall(text)
    line = found[-1] if found else (text.strip().splitlines() or ["?"])[-1]
    line = line.split(" when calling")[0]
    line = re.sub(r"\b\w+\.(byte_offset|shape\[\d+\])", r"<buffer>.\1", line)
    line = re.sub(r"#\d+", "#N", line)
    return str(without_venv_paths(line.strip()))[:240]


def top_causes(report: Path, limit: int = 3) -> list[list[object]]:
    """[[count, cause], ...] over the failed and errored tests, most frequent first."""
    if not report.is_file():
        return []
    counts: dict[str, int] = {}
    # S314: the report is the one this runner's own pytest just wrote, not untrusted input.
    for case in ElementTree.parse(report).getroot().iter("testcase"):  # noqa: S314
        for child in case:
            if child.tag in ("failure", "error"):
                cause = _cause(child.text or child.get("message") or "")
                counts[cause] = counts.get(cause, 0) + 1
    ranked = sorted(counts.items(), key=lambda item: -item[1])[:limit]
    return [[count, cause] for cause, count in ranked]


def failed_names(report: Path, limit: int = 8) -> list[str]:
    """The first `limit` failed or errored tests, as classname.name."""
    if not report.is_file():
        return []
    # S314: the report is the one this runner's own pytest just wrote, not untrusted input.
    names = [
        f"{case.get('classname', '')}.{case.get('name', '')}"
        for case in ElementTree.parse(report).getroot().iter("testcase")  # noqa: S314
        if {child.tag for child in case} & {"error", "failure"}
    ]
    return names[:limit]
