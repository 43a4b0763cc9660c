"""The compatibility matrix's cells: which MXNet, TVM and apache-tvm-ffi each environment
installs, the pins and why, and where the runner keeps its files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

MXNET_VERSIONS = ("1.5.1.post0", "1.6.0", "1.7.0.post2", "1.8.0.post0", "1.9.0", "1.9.1")
TVM_VERSIONS = ("0.25.0", "0.26.0", "0.27.0.post1")

#: apache-tvm-ffi pinned per TVM release. apache-tvm 0.25.0 declares apache-tvm-ffi>=0.1.12,
#: but from 0.1.13 on `import tvm` fails on an undefined tvm-ffi C++ symbol: pip's default pick
#: is broken, hence the pin. 0.26.0 and 0.27.0.post1 declare >=0.1.13.post2 / >=0.1.14.post0
#: and run with the newest release (0.1.15 is only published as .post1/.post2).
TVM_FFI_PINS = {"0.25.0": "0.1.12", "0.26.0": "0.1.15.post2", "0.27.0.post1": "0.1.15.post2"}

#: Every cell: MXNet 1.x needs numpy<1.24 (np.bool); newer ml_dtypes needs numpy 2.
COMMON_PINS = ("numpy<1.24", "ml_dtypes<0.5")

PYTHON = "3.11"

#: The unpinned controls: TVM 0.25.0 with newer apache-tvm-ffi releases (the last is what pip
#: picks without the pin). Expected to fail at `import tvm`, with the probe naming the cause and
#: the pin as remedy.
CONTROL_TVM_FFI = ("0.1.13.post2", "0.1.14.post1", "0.1.15.post2")
CONTROL_MXNET = "1.9.1"

RESULTS_JSON = REPO / "docs" / "compatibility-results.json"
TABLE_MD = REPO / "docs" / "compatibility.md"
WORK_DIR = REPO / ".nox" / "_matrix"

CORE_TESTS = "tests/test_bridge_*.py"
PRODUCER_TESTS = "tests/test_producers_*.py"


@dataclass(frozen=True)
class Cell:
    """One environment of the matrix."""

    mxnet: str
    tvm: str
    tvm_ffi: str
    control: bool = False  # the deliberately unpinned cell, expected to fail

    @property
    def id(self) -> str:
        """The cell's name: its MXNet and TVM versions (and tvm-ffi's for the control)."""
        suffix = f"-tvm_ffi_{self.tvm_ffi}-unpinned" if self.control else ""
        return f"mxnet_{self.mxnet}-tvm_{self.tvm}{suffix}"

    def requirements(self) -> list[str]:
        """The pins the cell's virtualenv is installed from."""
        return [f"mxnet=={self.mxnet}", f"apache-tvm=={self.tvm}",
                f"apache-tvm-ffi=={self.tvm_ffi}", *COMMON_PINS]


def matrix_cells() -> list[Cell]:
    """The full matrix, then the unpinned control cells."""
    cells = [Cell(mx, tvm, TVM_FFI_PINS[tvm]) for mx in MXNET_VERSIONS for tvm in TVM_VERSIONS]
    cells += [Cell(CONTROL_MXNET, "0.25.0", ffi, control=True) for ffi in CONTROL_TVM_FFI]
    return cells


def corner_cells() -> list[Cell]:
    """What CI runs besides the default stack: oldest MXNet x newest TVM, newest x oldest."""
    return [Cell(MXNET_VERSIONS[0], TVM_VERSIONS[-1], TVM_FFI_PINS[TVM_VERSIONS[-1]]),
            Cell(MXNET_VERSIONS[-1], TVM_VERSIONS[0], TVM_FFI_PINS[TVM_VERSIONS[0]])]
