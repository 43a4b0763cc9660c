"""What a rule finds, and how its findings become a verdict's status, reasons and remedies.

Statuses, best to worst: ok, degraded (works, something is missing or slower), unavailable
(cannot run here), unsafe (would run but compute garbage or corrupt memory).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Findings:
    """The findings of one rule, sorted by what they do to the status."""

    blockers: list[str] = field(default_factory=list)  # -> unavailable
    unsafe: list[str] = field(default_factory=list)
    degraded: list[str] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # neither passed nor failed: not checked
    remedy: list[str] = field(default_factory=list)


def verdict_status(f: Findings) -> str:
    """The worst status the findings call for."""
    if f.blockers:
        return "unavailable"
    if f.unsafe:
        return "unsafe"
    return "degraded" if f.degraded else "ok"


def verdict_reasons(f: Findings) -> list[str]:
    """The reasons a verdict gives: the findings that set its status, else what passed."""
    # Only the findings that set the status: degradations do not matter when it cannot run.
    for findings in (f.blockers, f.unsafe, f.degraded):
        if findings:
            return list(findings)
    return f.passed + [f"note: {note}" for note in f.notes]


def dedupe(items: list[str]) -> list[str]:
    """`items` without repeats, in first-seen order (several checks suggest one remedy)."""
    return list(dict.fromkeys(items))
