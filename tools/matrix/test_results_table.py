"""How the matrix judges a cell and renders the table (pure Python, no MXNet or TVM needed).

Run with: python -m pytest -q -p no:cacheprovider tools/matrix
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import matrix_cells
import results_table


def _group(ok: bool, tests: int = 10) -> dict[str, Any]:
    return {"ok": ok, "tests": tests, "passed": tests if ok else tests - 2,
            "failed": 0 if ok else 2, "errors": 0, "skipped": 0, "exit_code": 0 if ok else 1,
            "failing": [] if ok else ["tests.test_x.test_y"], "causes": [] if ok else [[2, "E"]]}


def _result(cell: matrix_cells.Cell, core_ok: bool, status: str, reasons: list[str] | None = None,
            remedy: list[str] | None = None) -> dict[str, Any]:
    verdicts = {"bridge-async": {"status": status, "reasons": reasons or [],
                                 "remedy": remedy or []}}
    return {"id": cell.id, "mxnet": cell.mxnet, "tvm": cell.tvm, "tvm_ffi_pin": cell.tvm_ffi,
            "control": cell.control, "installed": {"bridge_cffi_location":
                                                   "site-packages/bridge_cffi/__init__.py"},
            "core": _group(core_ok), "producers": _group(True),
            "probe": {"ran": True, "verdicts": verdicts}, "seconds": 30.0,
            "measured_at": "2026-01-01 00:00 UTC", "source": {"commit": "abc", "dirty": False}}


GRID_CELL = matrix_cells.Cell("1.9.1", "0.27.0.post1", "0.1.15.post2")
CONTROL_CELL = matrix_cells.Cell("1.9.1", "0.25.0", "0.1.15.post2", control=True)


def test_every_mxnet_and_tvm_release_is_a_cell_with_its_tvm_ffi_pin() -> None:
    grid = [cell for cell in matrix_cells.matrix_cells() if not cell.control]
    assert len(grid) == 18
    assert {cell.tvm_ffi for cell in grid if cell.tvm == "0.25.0"} == {"0.1.12"}
    assert all("numpy<1.24" in cell.requirements() for cell in grid)


def test_corners_are_oldest_mxnet_with_newest_tvm_and_newest_with_oldest() -> None:
    assert [(c.mxnet, c.tvm, c.tvm_ffi) for c in matrix_cells.corner_cells()] == [
        ("1.5.1.post0", "0.27.0.post1", "0.1.15.post2"), ("1.9.1", "0.25.0", "0.1.12")]


def test_probe_ok_and_passing_tests_agree() -> None:
    judged = results_table.judge(_result(GRID_CELL, True, "ok"))
    assert judged["agrees"] and judged["as_expected"]


def test_probe_ok_but_failing_tests_disagree() -> None:
    judged = results_table.judge(_result(GRID_CELL, False, "ok"))
    assert judged["predicted"] == "pass" and judged["measured"] == "fail"
    assert not judged["agrees"] and not judged["as_expected"]


def test_probe_unsafe_predicts_failure() -> None:
    assert results_table.judge(_result(GRID_CELL, False, "unsafe"))["agrees"]


def test_degraded_because_import_tvm_fails_predicts_failure() -> None:
    judged = results_table.judge(_result(GRID_CELL, False, "degraded", ["import tvm fails (x)"]))
    assert judged["predicted"] == "fail" and judged["agrees"]


def test_control_cell_is_as_expected_only_when_the_probe_names_the_pin() -> None:
    explained = _result(CONTROL_CELL, False, "degraded", ["import tvm fails (OSError)"],
                        ["pin apache-tvm-ffi: pip install 'apache-tvm-ffi==0.1.12'"])
    silent = _result(CONTROL_CELL, False, "degraded", ["import tvm fails (OSError)"], [])
    assert results_table.judge(explained)["as_expected"]
    assert not results_table.judge(silent)["as_expected"]


def test_a_source_tree_import_is_not_a_measurement_of_the_wheel() -> None:
    result = _result(GRID_CELL, True, "ok")
    result["installed"]["bridge_cffi_location"] = "/work/main/bridge_cffi/__init__.py"
    assert results_table.judge(result)["measured"] == "fail"


def test_table_shows_measured_cells_and_marks_the_others() -> None:
    results = {GRID_CELL.id: results_table.judge(_result(GRID_CELL, True, "ok"))}
    text = results_table.render_markdown(results)
    assert "| 1.9.1 | not measured | not measured | **pass** 10/10" in text
    assert "1 of 18 cells measured" in text
    assert "do not edit by hand" in text


def test_venv_paths_are_shortened() -> None:
    text = "cannot load /x/.nox/m-1/lib/python3.11/site-packages/tvm/lib/libtvm.so: bad"
    assert (matrix_cells.without_venv_paths(text)
            == "cannot load site-packages/tvm/lib/libtvm.so: bad")
