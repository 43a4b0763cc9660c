"""Cells with a TVM of the PackedFunc generation (TVM < 0.20) built by a third party.

hhb-tvm 3.2.3 is TVM 0.16.dev0 built by GCC 9/11 with the old std::string ABI, published for
Python 3.8 and 3.10 only; it cannot share an environment with apache-tvm (both are `tvm`).
Each cell is a fresh Python 3.10 virtualenv with MXNet, hhb-tvm and a bridge_cffi wheel built
for that Python; it runs tests/packed_func/ in strict mode and the probe. Used by noxfile.py
(`nox -s packed_func`); the seed's real scenario, MXNet PR #9880.
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matrix_cells

PYTHON = "3.10"
HHB_TVM = "3.2.3"
#: MXNet 1.x needs numpy < 1.24 (np.bool).
PINS = ("numpy<1.24",)
TESTS = "tests/packed_func/test_*.py"


def interpreter() -> str:
    """Python 3.10 for nox: $BRIDGE_CFFI_PYTHON310, else pyenv's newest 3.10 (our machines have
    one; pyenv's shim refuses versions not selected), else whatever nox finds as "3.10".
    """
    chosen = os.environ.get("BRIDGE_CFFI_PYTHON310")
    if chosen:
        return chosen
    root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    found = sorted(Path(root).glob(f"versions/{PYTHON}.*/bin/python{PYTHON}"),
                   key=lambda path: [int(part) for part in path.parts[-3].split(".")
                                     if part.isdigit()])
    return str(found[-1]) if found else PYTHON


@dataclass(frozen=True)
class PackedFuncCell:
    """One MXNet release with hhb-tvm."""

    mxnet: str

    @property
    def id(self) -> str:
        """The cell's name in nox and in the results."""
        return f"packed_func-mxnet_{self.mxnet}-hhb_tvm_{HHB_TVM}"

    def requirements(self) -> list[str]:
        """What pip installs into the cell's virtualenv."""
        return [f"mxnet=={self.mxnet}", f"hhb-tvm=={HHB_TVM}", *PINS]


#: The newest and the oldest MXNet the bridge supports.
CELLS = (PackedFuncCell("1.9.1"), PackedFuncCell("1.5.1.post0"))


def measure(cell: PackedFuncCell, python: str, env: dict[str, str], cell_dir: Path,
            wheel: Path) -> dict[str, Any]:
    """Run the PackedFunc tests and the probe in the cell; ``python`` is its interpreter."""
    staging = matrix_cells.stage_tests(cell_dir / "staging")
    log = cell_dir / "cell.log"
    cell_env = dict(env)
    cell_env.pop("PYTHONPATH", None)
    cell_env["BRIDGE_CFFI_STRICT"] = "1"  # a skipped test is a failed test, as in CI
    cell_env["BRIDGE_CFFI_PACKED_FUNC_TVM"] = "1"  # collect tests/packed_func/
    started = time.monotonic()
    tests = matrix_cells.run_pytest(python, staging, TESTS, "packed_func", cell_env, log)
    probe = matrix_cells.run_probe(python, staging, cell_env, log)
    return {
        "id": cell.id,
        "mxnet": cell.mxnet,
        "tvm": f"hhb-tvm {HHB_TVM}",
        "requirements": cell.requirements(),
        "installed": matrix_cells.installed_versions(python, staging, cell_env),
        "packed_func_tests": tests,
        "probe": probe,
        "seconds": round(time.monotonic() - started, 1),
        "measured_at": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "source": matrix_cells.source_state(),
        "wheel": f"{wheel.parent.name}/{wheel.name}",
    }


def as_expected(result: dict[str, Any]) -> bool:
    """Tests pass and the probe says the bridge works here."""
    verdict = ((result["probe"].get("verdicts") or {}).get("bridge-async") or {}).get("status")
    return bool(result["packed_func_tests"]["ok"]) and verdict in ("ok", "degraded")


def render_rows(results: dict[str, dict[str, Any]]) -> list[str]:
    """The markdown section for the PackedFunc cells found in ``results``."""
    found = [results[cell.id] for cell in CELLS if cell.id in results]
    if not found:
        return []
    lines = [
        "## TVM of the PackedFunc generation (TVM < 0.20), built by a third party",
        "",
        (f"`nox -s packed_func`: Python {PYTHON}, `hhb-tvm=={HHB_TVM}` (TVM 0.16.dev0, GCC 9/11, "
        "old std::string ABI) with pip MXNet; `tests/packed_func/` in strict mode and the probe."),
        "",
        "| MXNet | TVM | tests/packed_func | probe bridge-async | MXTVMBridge, measured | at |",
        "|---|---|---|---|---|---|",
    ]
    for result in found:
        tests = result["packed_func_tests"]
        verdicts = result["probe"].get("verdicts") or {}
        bridge = (verdicts.get("bridge-async") or {}).get("status", "?")
        legacy = (verdicts.get("legacy-mxtvmbridge") or {}).get("reasons") or ["?"]
        trial = next((r for r in legacy if r.startswith("measured:")), "not tried")
        trial = trial.replace("measured: the seed through MXTVMBridge with this TVM ", "")
        source = result.get("source") or {}
        mark = "pass" if tests["ok"] else "FAIL"
        lines.append(
            f"| {result['mxnet']} | {result['tvm']} | {mark} ({tests['passed']}/{tests['tests']}) "
            f"| {bridge} | {trial} | {source.get('commit')}"
            f"{' (dirty)' if source.get('dirty') else ''}, {result['measured_at']} |"
        )
    return [*lines, ""]
