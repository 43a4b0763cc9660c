"""The compatibility matrix: which environments exist, and how one of them is measured.

Used by noxfile.py. One cell is one fresh virtualenv with one MXNet and one TVM from PyPI plus
the bridge_cffi wheel; it runs the core tests (tests/test_bridge_*.py) and the producer tests
(tests/test_producers_*.py) in strict mode, and the probe (`python -m abi_checks --json`).

Nothing here imports MXNet or TVM: the runner's own interpreter only orchestrates.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import re
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from contextlib import contextmanager
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
        suffix = f"-tvm_ffi_{self.tvm_ffi}-unpinned" if self.control else ""
        return f"mxnet_{self.mxnet}-tvm_{self.tvm}{suffix}"

    def requirements(self) -> list[str]:
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


# --- The bridge wheel: built once per source state, installed into every cell -------------

#: What the wheel is built from. The extension links libc only and resolves MXNet and tvm-ffi
#: at run time, so one wheel serves every cell (all are CPython 3.11).
_WHEEL_INPUTS = ("pyproject.toml", "setup.py", "README.md", "bridge_cffi", "abi_checks", "csrc")
_IGNORED = shutil.ignore_patterns("__pycache__", "*.so", "*.o", "_native.c", "*.egg-info",
                                  ".mypy_cache", ".pytest_cache")


def _source_files(root: Path, names: tuple[str, ...]) -> Iterator[Path]:
    for name in names:
        path = root / name
        if path.is_file():
            yield path
            continue
        for file in sorted(path.rglob("*")):
            parts = set(file.relative_to(root).parts)
            if file.is_file() and "__pycache__" not in parts and not any(
                file.name.endswith(end) for end in (".so", ".o", "_native.c", ".pyc")
            ) and not any(p.endswith(".egg-info") for p in parts):
                yield file


def source_digest() -> str:
    """A hash of everything the wheel is built from (the working tree, committed or not)."""
    digest = hashlib.sha256()
    for file in _source_files(REPO, _WHEEL_INPUTS):
        digest.update(str(file.relative_to(REPO)).encode() + b"\0")
        digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between runner processes (two cells may run at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def bridge_wheel(python: str, log: Path, python_tag: str = "") -> Path:
    """Return the bridge_cffi wheel for the current sources, building it on first use.

    Built from a copy of the sources in a temporary directory, so neither the main tree's
    in-place build (bridge_cffi/_native*.so, build/) nor another runner's build is touched.
    """
    digest = source_digest()
    # One wheel per interpreter version: the wheel carries its Python's tag.
    wheel_dir = WORK_DIR / "wheels" / (digest + (f"-py{python_tag}" if python_tag else ""))
    with file_lock(WORK_DIR / "wheels.lock"):
        found = sorted(wheel_dir.glob("bridge_cffi-*.whl"))
        if found:
            return found[0]
        with tempfile.TemporaryDirectory(prefix="bridge_wheel_") as scratch:
            source = Path(scratch) / "src"
            source.mkdir()
            for name in _WHEEL_INPUTS:
                origin = REPO / name
                if origin.is_dir():
                    shutil.copytree(origin, source / name, ignore=_IGNORED)
                else:
                    shutil.copy2(origin, source / name)
            staging_wheels = Path(scratch) / "wheels"
            with log.open("a") as out:
                subprocess.run([python, "-m", "pip", "wheel", "--no-deps", "-q",
                                "--disable-pip-version-check", "-w", str(staging_wheels),
                                str(source)], check=True, stdout=out, stderr=subprocess.STDOUT)
            built = sorted(staging_wheels.glob("bridge_cffi-*.whl"))
            wheel_dir.mkdir(parents=True, exist_ok=True)
            target = wheel_dir / built[0].name
            shutil.copy2(built[0], target)
            return target


# --- Running one cell ------------------------------------------------------------------------

def stage_tests(destination: Path) -> Path:
    """Copy what the tests read (tests/, csrc/ for headers, examples/, pytest's config) into
    ``destination``, without the packages: `import bridge_cffi` then finds the installed wheel."""
    if destination.exists():
        shutil.rmtree(destination)
    destination.mkdir(parents=True)
    for name in ("tests", "csrc", "examples"):
        shutil.copytree(REPO / name, destination / name, ignore=_IGNORED)
    shutil.copy2(REPO / "pyproject.toml", destination / "pyproject.toml")
    return destination


def _count_junit(report: Path) -> dict[str, int]:
    counts = {"tests": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0, "xfailed": 0}
    if not report.is_file():
        return counts
    for case in ElementTree.parse(report).getroot().iter("testcase"):
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


_ERROR_LINE = re.compile(r"^E\s+((?:[\w.]+)(?:Error|Exception|Exit)\b.*)$", re.M)


def _cause(text: str) -> str:
    """The last exception line of a failure, shortened so equal causes count together."""
    found = _ERROR_LINE.findall(text)
    line = found[-1] if found else (text.strip().splitlines() or ["?"])[-1]
    line = line.split(" when calling")[0]
    line = re.sub(r"\b\w+\.(byte_offset|shape\[\d+\])", r"<buffer>.\1", line)
    line = re.sub(r"#\d+", "#N", line)
    return str(without_venv_paths(line.strip()))[:240]


def _top_causes(report: Path, limit: int = 3) -> list[list[object]]:
    """[[count, cause], ...] over the failed and errored tests, most frequent first."""
    if not report.is_file():
        return []
    counts: dict[str, int] = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        for child in case:
            if child.tag in ("failure", "error"):
                cause = _cause(child.text or child.get("message") or "")
                counts[cause] = counts.get(cause, 0) + 1
    ranked = sorted(counts.items(), key=lambda item: -item[1])[:limit]
    return [[count, cause] for cause, count in ranked]


def _failed_names(report: Path, limit: int = 8) -> list[str]:
    if not report.is_file():
        return []
    names = []
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        if {child.tag for child in case} & {"error", "failure"}:
            names.append(f"{case.get('classname', '')}.{case.get('name', '')}")
    return names[:limit]


def _run_logged(command: list[str], cwd: Path, env: dict[str, str], log: Path,
                timeout: float) -> tuple[int, float]:
    started = time.monotonic()
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(command)}\n")
        out.flush()
        try:
            code = subprocess.run(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=timeout).returncode
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
               "-c", str(staging / "pyproject.toml"), "--basetemp", str(staging.parent / f"{name}.tmp"),
               "--junitxml", str(report), *files]
    code, seconds = _run_logged(command, staging, env, log, timeout)
    result: dict[str, object] = {"exit_code": code, "seconds": seconds, **_count_junit(report)}
    result["ok"] = code == 0 and result["tests"] > 0
    result["failing"] = _failed_names(report)
    result["causes"] = _top_causes(report)
    return result


_VENV_PATH = re.compile(r"/[^\s'\"()]*?/lib/python3\.\d+/site-packages/")


def without_venv_paths(value: object) -> object:
    """Shorten every path inside a cell's virtualenv to ``site-packages/...`` (the JSON and the
    table are committed; the machine's directories say nothing)."""
    if isinstance(value, str):
        return _VENV_PATH.sub("site-packages/", value)
    if isinstance(value, list):
        return [without_venv_paths(item) for item in value]
    if isinstance(value, dict):
        return {key: without_venv_paths(item) for key, item in value.items()}
    return value


def run_probe(python: str, staging: Path, env: dict[str, str], log: Path) -> dict[str, object]:
    """`python -m abi_checks --json` in the cell; keep the verdicts and what explains them."""
    started = time.monotonic()
    try:
        done = subprocess.run([python, "-m", "abi_checks", "--json"], cwd=staging, env=env,
                              capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return {"ran": False, "error": "probe timed out after 300 s"}
    with log.open("a") as out:
        out.write(f"\n$ python -m abi_checks --json  (exit {done.returncode})\n{done.stderr}\n")
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        return {"ran": False, "exit_code": done.returncode,
                "error": (done.stderr or done.stdout).strip()[-2000:] or "no output"}
    dynamic = report.get("dynamic") or {}
    verdicts = {v["name"]: {"status": v["status"], "reasons": v.get("reasons", []),
                            "remedy": v.get("remedy", [])} for v in report.get("verdicts", [])}
    return without_venv_paths({
        "ran": True,
        "exit_code": done.returncode,
        "seconds": round(time.monotonic() - started, 1),
        "schema_version": report.get("schema_version"),
        "verdicts": verdicts,
        "mxnet_version": dynamic.get("mxnet_version"),
        "tvm_version": dynamic.get("tvm_version"),
        "tvm_ffi_version": dynamic.get("tvm_ffi_version"),
        "tvm_error": dynamic.get("tvm_error"),
        "bridge_error_mode": dynamic.get("bridge_error_mode"),
    })


_REPORTED_DISTRIBUTIONS = ("mxnet", "apache-tvm", "apache-tvm-ffi", "numpy", "ml_dtypes",
                           "bridge_cffi")

_VERSIONS_SCRIPT = """
import json, platform, sys
from importlib import metadata, util
out = {"python": platform.python_version()}
for name in sys.argv[1:]:
    try:
        out[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        out[name] = None
spec = util.find_spec("bridge_cffi")  # where `import bridge_cffi` would load from, not run
out["bridge_cffi_location"] = spec.origin if spec else None
print(json.dumps(out))
"""


def installed_versions(python: str, staging: Path, env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run([python, "-c", _VERSIONS_SCRIPT, *_REPORTED_DISTRIBUTIONS],
                          cwd=staging, env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        return {"error": done.stderr.strip()[-1000:]}
    versions: dict[str, object] = json.loads(done.stdout)
    return without_venv_paths(versions)  # type: ignore[return-value]


def source_state() -> dict[str, object]:
    """The commit the matrix measured, and whether the tree had uncommitted changes."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    return {"commit": git("rev-parse", "--short=12", "HEAD") or None,
            # The results this runner itself writes do not make the measured tree dirty.
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no", "--", ".",
                              f":!{RESULTS_JSON.relative_to(REPO)}",
                              f":!{TABLE_MD.relative_to(REPO)}"))}


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
    env = dict(os.environ)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env["VIRTUAL_ENV"] = str(Path(bin_dir).parent)
    return env
