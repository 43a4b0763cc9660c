"""Running one cell: stage the tests, run the test groups and the probe, collect the record.

One cell is one fresh virtualenv with one MXNet and one TVM from PyPI plus the bridge_cffi
wheel; it runs the core tests (tests/test_bridge_*.py) and the producer tests
(tests/test_producers_*.py) in strict mode, and the probe (`python -m abi_checks --json`).
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import subprocess
import time
from pathlib import Path

from bridge_wheel import IGNORED
from cell_definitions import CORE_TESTS, PRODUCER_TESTS, REPO, WORK_DIR, Cell
from cell_probe import run_probe
from cell_provenance import installed_versions, source_state
from junit_results import count_junit, failed_names, top_causes


def stage_tests(destination: Path) -> Path:
    """Copy what the tests read (tests/, csrc/ for headers, examples/, pytest's config) into
    ``destination``, without the packages: `import bridge_cffi` then finds the installed wheel.
    """
    if destination.exists():
        shutil.rmtree(destination)
    destination.mkdir(parents=True)
    for name in ("tests", "csrc", "examples"):
        shutil.copytree(REPO / name, destination / name, ignore=IGNORED)
    shutil.copy2(REPO / "pyproject.toml", destination / "pyproject.toml")
    return destination


def _run_logged(command: list[str], cwd: Path, env: dict[str, str], log: Path,
                timeout: float) -> tuple[int, float]:
    started = time.monotonic()
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(command)}\n")
        out.flush()
        try:
            code = subprocess.run(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=timeout, check=False).returncode
        except subprocess.TimeoutExpired:
            out.write(f"\n[runner] timed out after {timeout:.0f} s\n")
            code = -9
    return code, round(time.monotonic() - started, 1)


def run_pytest(python: str, staging: Path, pattern: str, name: str, env: dict[str, str],
               log: Path, timeout: float = 1200) -> dict[str, object]:
    """Run one test group in strict mode from ``staging``; return counts and the exit code."""
    report = staging.parent / f"{name}.junit.xml"
    report.unlink(missing_ok=True)
    files = sorted(str(path.relative_to(staging)) for path in staging.glob(pattern))
    command = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(staging),
               "-c", str(staging / "pyproject.toml"),
               "--basetemp", str(staging.parent / f"{name}.tmp"),
               "--junitxml", str(report), *files]
    code, seconds = _run_logged(command, staging, env, log, timeout)
    counts = count_junit(report)
    result: dict[str, object] = {"exit_code": code, "seconds": seconds, **counts}
    result["ok"] = code == 0 and counts["tests"] > 0
    result["failing"] = failed_names(report)
    result["causes"] = top_causes(report)
    return result


def cell_directory(cell: Cell) -> Path:
    """A fresh directory for one cell's staging tree, logs and test reports."""
    directory = WORK_DIR / "cells" / cell.id
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    return directory


def remove_virtualenv(location: Path) -> None:
    """Delete a cell's virtualenv (only ever one nox created under .nox/)."""
    location = location.resolve()
    if location.parent == (REPO / ".nox").resolve() and (location / "pyvenv.cfg").is_file():
        shutil.rmtree(location, ignore_errors=True)


def measure_cell(cell: Cell, python: str, env: dict[str, str], session_dir: Path,
                 wheel: Path) -> dict[str, object]:
    """Run everything one cell measures; ``python`` is the cell's interpreter."""
    staging = stage_tests(session_dir / "staging")
    log = session_dir / "cell.log"
    cell_env = dict(env)
    cell_env["BRIDGE_CFFI_STRICT"] = "1"  # a skipped test is a failed test, as in CI
    cell_env.pop("PYTHONPATH", None)
    cell_env["TVM_FFI_CACHE_DIR"] = str(session_dir / "tvm_ffi_cache")
    started = time.monotonic()
    versions = installed_versions(python, staging, cell_env)
    core = run_pytest(python, staging, CORE_TESTS, "core", cell_env, log)
    producers = run_pytest(python, staging, PRODUCER_TESTS, "producers", cell_env, log)
    probe = run_probe(python, staging, cell_env, log)
    return {
        "id": cell.id,
        "mxnet": cell.mxnet,
        "tvm": cell.tvm,
        "tvm_ffi_pin": cell.tvm_ffi,
        "control": cell.control,
        "requirements": cell.requirements(),
        "installed": versions,
        "core": core,
        "producers": producers,
        "probe": probe,
        "seconds": round(time.monotonic() - started, 1),
        "measured_at": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "source": source_state(),
        "wheel": f"{wheel.parent.name}/{wheel.name}",
        "log": str(log.relative_to(REPO)) if log.is_relative_to(REPO) else str(log),
    }


def environment_for(bin_dir: str) -> dict[str, str]:
    """This process's environment with the cell's virtualenv first on PATH."""
    env = dict(os.environ)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env["VIRTUAL_ENV"] = str(Path(bin_dir).parent)
    return env
