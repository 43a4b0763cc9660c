"""The package layering holds: lint-imports over pyproject.toml's contracts, and one importer
of the compiled extension (until `make lint` runs the same).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_the_import_contracts_are_kept() -> None:
    done = _lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_a_bridge_module_importing_the_probe_breaks_a_contract(tmp_path: Path) -> None:
    # The same tool on a copy with one forbidden import: it must fail, and say which contract.
    for name in ("bridge_cffi", "abi_checks", "benchmarks"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("*.so"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    errors = tmp_path / "bridge_cffi" / "errors.py"
    errors.write_text(errors.read_text() + "\nimport abi_checks.cli  # noqa: E402\n")
    done = _lint_imports(tmp_path)
    assert done.returncode != 0, done.stdout
    assert "the bridge never imports the probe BROKEN" in done.stdout


def _imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_only_bridge_cffi_native_imports_the_extension() -> None:
    # import-linter's graph holds Python files only, so the compiled module is checked here,
    # over everything that could import it.
    importers = sorted(
        str(path.relative_to(ROOT))
        for folder in ("bridge_cffi", "abi_checks", "tests", "benchmarks", "tools", "examples")
        for path in (ROOT / folder).rglob("*.py")
        if "bridge_cffi._native" in _imports_of(path)
    )
    assert importers == ["bridge_cffi/native.py"]
