"""Compatibility runs: MXNet 1.5.1 to 1.9.1 × TVM 0.25 to 0.27, each in a fresh venv from PyPI.

    nox -s matrix     every cell (18, plus 3 unpinned controls); writes docs/compatibility.md
    nox -s corners    what CI runs: oldest MXNet × newest TVM, newest MXNet × oldest TVM
    nox -s packed_func  CI too: Python 3.10, MXNet 1.9.1 and 1.5.1 × hhb-tvm 3.2.3 (TVM 0.16, the
                      PackedFunc generation, built by a third party); records its rows
    nox -l            list the sessions; run one cell with nox -s 'matrix(mxnet_1.9.1-tvm_0.25.0)'

Cells and pins are in tools/matrix/cell_definitions.py (matrix_cells.py gathers the runner's
names), the table in tools/matrix/results_table.py.
A cell is a session: nox runs them one after another; two nox processes given different
sessions may run at once (the wheel build and the results file are locked).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

import nox

sys.path.insert(0, str(Path(__file__).resolve().parent / "tools" / "matrix"))

import matrix_cells
import packed_func_cells
import results_table

nox.options.sessions = ["corners"]
nox.options.reuse_existing_virtualenvs = False
nox.options.error_on_missing_interpreters = True


#: When this nox run started: each cell reports its place and the time since.
_STARTED = time.monotonic()


def _progress(session: nox.Session, cell: object, cells: Sequence[object]) -> None:
    """Log "cell k of n" with the time elapsed since this nox run started."""
    elapsed = time.monotonic() - _STARTED
    session.log(f"cell {cells.index(cell) + 1} of {len(cells)}: {getattr(cell, 'id', cell)} "
                f"({elapsed / 60:.1f} min since this run started)")


def _install_and_measure(session: nox.Session, cell: matrix_cells.Cell, record: bool) -> None:
    cell_dir = matrix_cells.cell_directory(cell)  # outside the virtualenv: kept after it
    log = cell_dir / "cell.log"
    log.write_text(f"cell {cell.id}\n")
    python = str(Path(session.bin).resolve() / "python")
    session.install("--disable-pip-version-check", "-q", "pip>=23")
    wheel = matrix_cells.bridge_wheel(python, log)
    session.log(f"bridge wheel: {wheel}")
    session.install("--disable-pip-version-check", "-q", *cell.requirements(), f"{wheel}[test]")
    session.log("measuring (core tests, producer tests, probe); log: %s", log)
    result = results_table.judge(
        matrix_cells.measure_cell(cell, python, matrix_cells.environment_for(session.bin),
                                  cell_dir, wheel)
    )
    if record:
        results_table.record(result)
    session.log(
        "%s: core %s (%s), producers %s (%s), probe bridge-async predicted %s -> %s",
        cell.id, result["measured"], results_table._counts(result["core"]),
        "pass" if result["producers"]["ok"] else "fail", results_table._counts(result["producers"]),
        result["predicted"], "agrees" if result["agrees"] else "DISAGREES",
    )
    if not result["as_expected"]:
        tail = "\n".join(log.read_text().splitlines()[-40:])
        session.error(f"{cell.id} did not do what the matrix expects; the virtualenv is kept "
                      f"for a look; last lines of {log}:\n{tail}")
    # ~650 MB per cell: a cell that did what it should does not keep its virtualenv.
    matrix_cells.remove_virtualenv(Path(session.virtualenv.location))


_MATRIX = matrix_cells.matrix_cells()


@nox.session(python=matrix_cells.PYTHON)
@nox.parametrize("cell", _MATRIX, ids=[cell.id for cell in _MATRIX])
def matrix(session: nox.Session, cell: matrix_cells.Cell) -> None:
    """One cell of the full matrix; records its result into docs/compatibility.md."""
    _progress(session, cell, _MATRIX)
    _install_and_measure(session, cell, record=True)


_CORNERS = matrix_cells.corner_cells()


@nox.session(python=matrix_cells.PYTHON)
@nox.parametrize("cell", _CORNERS, ids=[cell.id for cell in _CORNERS])
def corners(session: nox.Session, cell: matrix_cells.Cell) -> None:
    """CI's two corners; they do not touch the docs."""
    _progress(session, cell, _CORNERS)
    _install_and_measure(session, cell, record=False)


@nox.session(python=packed_func_cells.interpreter())
@nox.parametrize("cell", packed_func_cells.CELLS, ids=[cell.id for cell in packed_func_cells.CELLS])
def packed_func(session: nox.Session, cell: packed_func_cells.PackedFuncCell) -> None:
    """pip MXNet with a third-party TVM of the PackedFunc generation; records its row."""
    _progress(session, cell, packed_func_cells.CELLS)
    cell_dir = matrix_cells.cell_directory(cell)
    log = cell_dir / "cell.log"
    log.write_text(f"cell {cell.id}\n")
    python = str(Path(session.bin).resolve() / "python")
    session.install("--disable-pip-version-check", "-q", "pip>=23")
    # hhb-tvm's 64 MB wheel comes from pip's cache after the first cell.
    wheel = matrix_cells.bridge_wheel(python, log, python_tag=packed_func_cells.PYTHON)
    session.install("--disable-pip-version-check", "-q", *cell.requirements(), f"{wheel}[test]")
    session.log("measuring (tests/packed_func, probe); log: %s", log)
    result = packed_func_cells.measure(
        cell, python, matrix_cells.environment_for(session.bin), cell_dir, wheel
    )
    results_table.record(result)
    tests = result["packed_func_tests"]
    session.log("%s: tests/packed_func %s/%s passed in %s s; probe %s", cell.id, tests["passed"],
                tests["tests"], tests["seconds"],
                {name: v["status"] for name, v in (result["probe"].get("verdicts") or {}).items()})
    if not packed_func_cells.as_expected(result):
        tail = "\n".join(log.read_text().splitlines()[-60:])
        session.error(f"{cell.id} failed; the virtualenv is kept; last lines of {log}:\n{tail}")
    matrix_cells.remove_virtualenv(Path(session.virtualenv.location))


@nox.session(python=False)
def matrix_table(session: nox.Session) -> None:
    """Re-render docs/compatibility.md from docs/compatibility-results.json."""
    results = results_table.load_results()
    matrix_cells.TABLE_MD.write_text(results_table.render_markdown(results))
    session.log("wrote %s from %d results", matrix_cells.TABLE_MD, len(results))
