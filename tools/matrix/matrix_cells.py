"""The compatibility matrix: which environments exist, and how one of them is measured.

Used by noxfile.py, results_table.py and packed_func_cells.py, which import these names from
here. Each job has its own module: cell_definitions (the cells, pins and paths), bridge_wheel
(the wheel every cell installs), cell_run (staging, the test groups, one cell's record),
cell_probe (the probe's verdicts), cell_provenance (installed versions, the commit measured),
junit_results (reading pytest's reports), venv_paths, file_lock.

Nothing here imports MXNet or TVM: the runner's own interpreter only orchestrates.
"""

from __future__ import annotations

from bridge_wheel import bridge_wheel, source_digest
from cell_definitions import (
    COMMON_PINS,
    CONTROL_MXNET,
    CONTROL_TVM_FFI,
    CORE_TESTS,
    MXNET_VERSIONS,
    PRODUCER_TESTS,
    PYTHON,
    REPO,
    RESULTS_JSON,
    TABLE_MD,
    TVM_FFI_PINS,
    TVM_VERSIONS,
    WORK_DIR,
    Cell,
    corner_cells,
    matrix_cells,
)
from cell_probe import run_probe
from cell_provenance import installed_versions, source_state
from cell_run import (
    cell_directory,
    environment_for,
    measure_cell,
    remove_virtualenv,
    run_pytest,
    stage_tests,
)
from file_lock import file_lock
from venv_paths import without_venv_paths

__all__ = [
    "COMMON_PINS",
    "CONTROL_MXNET",
    "CONTROL_TVM_FFI",
    "CORE_TESTS",
    "MXNET_VERSIONS",
    "PRODUCER_TESTS",
    "PYTHON",
    "REPO",
    "RESULTS_JSON",
    "TABLE_MD",
    "TVM_FFI_PINS",
    "TVM_VERSIONS",
    "WORK_DIR",
    "Cell",
    "bridge_wheel",
    "cell_directory",
    "corner_cells",
    "environment_for",
    "file_lock",
    "installed_versions",
    "matrix_cells",
    "measure_cell",
    "remove_virtualenv",
    "run_probe",
    "run_pytest",
    "source_digest",
    "source_state",
    "stage_tests",
    "without_venv_paths",
]
