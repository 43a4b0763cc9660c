"""The bridge_cffi wheel every cell installs: built once per state of the sources."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from cell_definitions import REPO, WORK_DIR
from file_lock import file_lock

#: What the wheel is built from. The extension links libc only and resolves MXNet and tvm-ffi
#: at run time, so one wheel serves every cell (all are CPython 3.11).
_WHEEL_INPUTS = ("pyproject.toml", "setup.py", "README.md", "bridge_cffi", "abi_checks", "csrc")
#: What no copy of the sources takes (build outputs, caches).
IGNORED = shutil.ignore_patterns("__pycache__", "*.so", "*.o", "_native.c", "*.egg-info",
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
                    shutil.copytree(origin, source / name, ignore=IGNORED)
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
