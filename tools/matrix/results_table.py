"""Results of the compatibility matrix: agreement with the probe, the JSON record, the table.

docs/compatibility-results.json keeps the last measurement of every cell; docs/compatibility.md
is rendered from it after each cell, so the table always shows what was measured and nothing
else. Nobody edits either by hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import packed_func_cells
from matrix_cells import (
    COMMON_PINS,
    CORE_TESTS,
    MXNET_VERSIONS,
    PRODUCER_TESTS,
    PYTHON,
    RESULTS_JSON,
    TABLE_MD,
    TVM_FFI_PINS,
    TVM_VERSIONS,
    WORK_DIR,
    Cell,
    file_lock,
    matrix_cells,
)

ASYNC = "bridge-async"
_WORKS = ("ok",)
_BROKEN = ("unavailable", "unsafe")


def probe_prediction(probe: dict[str, Any]) -> str | None:
    """What the probe's bridge-async verdict says the core tests will do: "pass" or "fail".

    ok predicts pass; unavailable or unsafe predict fail; degraded predicts pass, except when
    a reason is that `import tvm` fails (then the TVM-built functions of the tests cannot be
    made). None when the probe did not run or gave no bridge-async verdict.
    """
    verdict = (probe.get("verdicts") or {}).get(ASYNC) if probe.get("ran") else None
    if verdict is None:
        return None
    status = verdict["status"]
    if status in _WORKS:
        return "pass"
    if status in _BROKEN:
        return "fail"
    if any("import tvm fails" in reason for reason in verdict.get("reasons", [])):
        return "fail"
    return "pass"


def probe_explains_missing_pin(probe: dict[str, Any]) -> bool:
    """The control cell: the probe names the failing import and tells to pin apache-tvm-ffi."""
    verdict = (probe.get("verdicts") or {}).get(ASYNC) or {}
    reasons = " ".join(verdict.get("reasons", []))
    remedies = " ".join(verdict.get("remedy", []))
    return "import tvm fails" in reasons and "apache-tvm-ffi" in remedies


def judge(result: dict[str, Any]) -> dict[str, Any]:
    """Add ``measured``, ``predicted``, ``agrees`` and ``as_expected`` to a cell's result."""
    location = str((result.get("installed") or {}).get("bridge_cffi_location") or "")
    result["tested_installed_wheel"] = location.startswith("site-packages/")
    measured = "pass" if result["core"]["ok"] and result["tested_installed_wheel"] else "fail"
    predicted = probe_prediction(result["probe"])
    result["measured"] = measured
    result["predicted"] = predicted
    result["agrees"] = predicted == measured
    if result["control"]:
        result["explained"] = probe_explains_missing_pin(result["probe"])
        result["as_expected"] = measured == "fail" and result["agrees"] and result["explained"]
    else:
        result["as_expected"] = (measured == "pass" and result["producers"]["ok"]
                                 and result["agrees"])
    return result


def record(result: dict[str, Any], render: bool = True) -> None:
    """Store one cell's result and re-render the table, under a lock shared by runners."""
    with file_lock(WORK_DIR / "results.lock"):
        results = load_results()
        results[result["id"]] = result
        RESULTS_JSON.parent.mkdir(parents=True, exist_ok=True)
        RESULTS_JSON.write_text(json.dumps(dict(sorted(results.items())), indent=1) + "\n")
        if render:
            TABLE_MD.write_text(render_markdown(results))


def load_results(path: Path = RESULTS_JSON) -> dict[str, dict[str, Any]]:
    """The recorded results, by cell id (none yet: empty)."""
    if not path.is_file():
        return {}
    loaded: dict[str, dict[str, Any]] = json.loads(path.read_text())
    return loaded


# --- Rendering -----------------------------------------------------------------------------

def _counts(group: dict[str, Any]) -> str:
    bad = group["failed"] + group["errors"]
    text = f"{group['passed']}/{group['tests']}"
    if bad:
        text += f", {bad} failed"
    if group["skipped"]:
        text += f", {group['skipped']} skipped"
    if group.get("xfailed"):
        text += f", {group['xfailed']} expected failure{'s' if group['xfailed'] != 1 else ''}"
    if group["exit_code"] not in (0, 1) and not group["tests"]:
        text = f"exit {group['exit_code']}, no test ran"
    return text


def _verdict_text(result: dict[str, Any]) -> str:
    probe = result["probe"]
    if not probe.get("ran"):
        return "probe did not run"
    verdict = (probe.get("verdicts") or {}).get(ASYNC)
    return f"probe {verdict['status']}" if verdict else "probe: no bridge-async verdict"


def _cell_text(result: dict[str, Any] | None) -> str:
    if result is None:
        return "not measured"
    core = result["core"]
    word = "**pass**" if core["ok"] else "**FAIL**"
    agreement = "agrees" if result["agrees"] else "**DISAGREES**"
    producers = "producers pass" if result["producers"]["ok"] else "**producers FAIL**"
    return (f"{word} {_counts(core)} · {producers} · {_verdict_text(result)}, {agreement}")


def _per_mxnet_rows(by_id: dict[str, dict[str, Any] | None]) -> list[str]:
    rows = []
    for mx in MXNET_VERSIONS:
        results = [by_id[Cell(mx, tvm, TVM_FFI_PINS[tvm]).id] for tvm in TVM_VERSIONS]
        measured = [r for r in results if r is not None]
        if not measured:
            rows.append(f"| {mx} | not measured | | |")
            continue
        statuses = sorted({_verdict_text(r).removeprefix("probe ") for r in measured})
        outcomes = sorted({"pass" if r["core"]["ok"] else "FAIL" for r in measured})
        agree = all(r["agrees"] for r in measured)
        missing = len(results) - len(measured)
        note = f" ({missing} not measured)" if missing else ""
        rows.append(f"| {mx} | {' / '.join(statuses)} | {' / '.join(outcomes)} in "
                    f"{len(measured)} cells{note} | {'yes' if agree else '**no**'} |")
    return rows


def _measured_at(measured: list[dict[str, Any]]) -> str:
    """Which commits the grid's cells were measured at, and when: the table describes those."""
    commits: dict[str, list[str]] = {}
    for result in measured:
        source = result.get("source") or {}
        name = f"{source.get('commit')}{' (uncommitted changes)' if source.get('dirty') else ''}"
        commits.setdefault(name, []).append(result["measured_at"])
    parts = [
        f"`{name}` ({len(times)} cells, {min(times)} to {max(times)})"
        for name, times in sorted(commits.items(), key=lambda item: min(item[1]))
    ]
    return "Measured at commit " + "; ".join(parts) + "." if parts else "Not measured yet."


def render_markdown(results: dict[str, dict[str, Any]]) -> str:
    """docs/compatibility.md from the results: the grid, then a row per cell and the causes."""
    cells = matrix_cells()
    grid = [cell for cell in cells if not cell.control]
    lines = [
        "# Compatibility matrix",
        "",
        ("<!-- Generated by `nox -s matrix` (tools/matrix/); do not edit by hand. The raw "
        "results are in compatibility-results.json next to this file. -->"),
        "",
        ("Written by the matrix runner, one row per MXNet release and one column per TVM "
        "release. Run it with:"),
        "",
        "```sh",
        "pip install nox && nox -s matrix        # every cell, one after the other",
        "nox -s 'matrix(mxnet_1.9.1-tvm_0.25.0)'  # one cell",
        "```",
        "",
        (f"Each cell is a fresh virtualenv on Python {PYTHON} with packages from PyPI: "
        f"`mxnet`, `apache-tvm`, `apache-tvm-ffi` pinned per TVM release (below), "
        f"`{'`, `'.join(COMMON_PINS)}`, and one `bridge_cffi` wheel built once from the "
        "working tree (its extension links libc only and finds MXNet and tvm-ffi at run time, so "
        "one wheel serves every cell). In it:"),
        "",
        (f"- **core**: `{CORE_TESTS}`, in strict mode (`BRIDGE_CFFI_STRICT=1`: a skipped test "
        "fails) — this decides pass or FAIL;"),
        f"- **producers**: `{PRODUCER_TESTS}` (load_inline, export_library, clang, C++ ABIs);",
        ("- **probe**: `python -m abi_checks --json`; its `bridge-async` verdict predicts the "
        "core result (ok: pass; unavailable or unsafe: fail; degraded: pass unless `import tvm` "
        "fails) and the cell says whether the prediction *agrees* with what was measured."),
        "",
        "## Core tests × probe",
        "",
    ]
    header = "| MXNet \\ TVM | " + " | ".join(
        f"{tvm} (tvm-ffi {TVM_FFI_PINS[tvm]})" for tvm in TVM_VERSIONS) + " |"
    lines += [header, "|---" * (len(TVM_VERSIONS) + 1) + "|"]
    by_id = {cell.id: results.get(cell.id) for cell in cells}
    for mx in MXNET_VERSIONS:
        row = [mx, *(_cell_text(by_id[Cell(mx, tvm, TVM_FFI_PINS[tvm]).id])
                     for tvm in TVM_VERSIONS)]
        lines.append("| " + " | ".join(row) + " |")
    measured = [found for cell in grid if (found := by_id[cell.id]) is not None]
    lines += [
        "",
        (f"{len(measured)} of {len(grid)} cells measured; "
        f"{sum(1 for r in measured if r['core']['ok'])} pass the core tests, "
        f"{sum(1 for r in measured if r['producers']['ok'])} pass the producer tests, "
        f"the probe agrees in {sum(1 for r in measured if r['agrees'])}."),
        "",
        _measured_at(measured),
        "",
        "## The probe against the matrix, per MXNet release",
        "",
        ("The `bridge-async` verdict of `python -m abi_checks` in each cell of the row, and what "
        "the core tests measured there."),
        "",
        "| MXNet | probe bridge-async | core tests | agrees |",
        "|---|---|---|---|",
        *_per_mxnet_rows(by_id),
        "",
        "## The apache-tvm-ffi pin",
        "",
        ("apache-tvm 0.25.0 declares `apache-tvm-ffi>=0.1.12`, so without a pin pip installs the "
        "newest tvm-ffi. The control cells below install newer tvm-ffi releases on purpose; they "
        "are expected to fail, and the probe is expected to say why and what to pin."),
        "",
        "| cell | core | probe bridge-async | as expected |",
        "|---|---|---|---|",
    ]
    for cell in cells:
        if not cell.control:
            continue
        result = by_id[cell.id]
        name = f"mxnet {cell.mxnet}, apache-tvm {cell.tvm}, apache-tvm-ffi {cell.tvm_ffi}"
        if result is None:
            lines.append(f"| {name} | not measured | | |")
            continue
        verdict = (result["probe"].get("verdicts") or {}).get(ASYNC) or {}
        said = "; ".join(verdict.get("reasons", [])[:1] + verdict.get("remedy", [])[:2])
        said = said.replace("|", "\\|").replace("\n", " ")
        lines.append(
            f"| {name} | {'pass' if result['core']['ok'] else 'FAIL'} {_counts(result['core'])} "
            f"| {verdict.get('status', '?')}: {said} | "
            f"{'yes' if result['as_expected'] else '**no**'} |")
    packed_func = packed_func_cells.render_rows(results)
    if packed_func:
        lines += ["", *packed_func[:-1]]
    lines += ["", "## Every cell", "",
              "| cell | installed | core | producers | probe verdicts | time | measured |",
              "|---|---|---|---|---|---|---|"]
    for cell in cells:
        result = by_id[cell.id]
        if result is None:
            lines.append(f"| {cell.id} | not measured | | | | | |")
            continue
        installed = result.get("installed", {})
        packages = ", ".join(f"{name} {installed.get(name)}" for name in
                             ("python", "mxnet", "apache-tvm", "apache-tvm-ffi", "numpy",
                              "ml_dtypes"))
        verdicts = ", ".join(f"{name} {info['status']}" for name, info in
                             (result["probe"].get("verdicts") or {}).items()) or "—"
        failing = result["core"].get("failing") or []
        core = _counts(result["core"]) + (f" (e.g. {failing[0]})" if failing else "")
        producers = _counts(result["producers"])
        source = result.get("source", {})
        dirty = "+dirty" if source.get("dirty") else ""
        when = f"{result['measured_at']}, {source.get('commit')}{dirty}"
        lines.append(f"| {cell.id} | {packages} | {core} | {producers} | {verdicts} | "
                     f"{result['seconds']:.0f} s | {when} |")
    failing = [(cell, found) for cell in cells if (found := by_id[cell.id]) is not None
               and not (found["core"]["ok"] and found["producers"]["ok"])]
    if failing:
        lines += ["", "## Why cells fail", "",
                  ("The most frequent causes among the failed tests of each failing cell (count × "
                  "last exception line); each cell's log, `.nox/_matrix/cells/<cell>/cell.log`, "
                  "has everything."), ""]
        for cell, result in failing:
            causes = []
            for group in ("core", "producers"):
                for count, cause in result[group].get("causes") or []:
                    causes.append(f"{group} {count}× `{str(cause).replace('`', chr(39))}`")
            if not causes:
                names = ((result["core"].get("failing") or [])
                         + (result["producers"].get("failing") or []))
                causes = [f"`{name.lstrip('.')}`" for name in names[:4]] or ["no failure recorded"]
            lines.append(f"- {cell.id}: " + "; ".join(causes))
    return "\n".join(lines) + "\n"
