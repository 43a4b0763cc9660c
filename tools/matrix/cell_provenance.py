"""What a measurement was made of: the versions installed in the cell, the commit measured."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from cell_definitions import REPO, RESULTS_JSON, TABLE_MD
from venv_paths import without_venv_paths

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
    """The versions the cell's interpreter has installed, and where bridge_cffi loads from."""
    done = subprocess.run([python, "-c", _VERSIONS_SCRIPT, *_REPORTED_DISTRIBUTIONS],
                          cwd=staging, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip()[-1000:]}
    versions: dict[str, object] = json.loads(done.stdout)
    return without_venv_paths(versions)


def source_state() -> dict[str, object]:
    """The commit the matrix measured, and whether the tree had uncommitted changes."""
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    return {"commit": git("rev-parse", "--short=12", "HEAD") or None,
            # The results this runner itself writes do not make the measured tree dirty.
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no", "--", ".",
                              f":!{RESULTS_JSON.relative_to(REPO)}",
                              f":!{TABLE_MD.relative_to(REPO)}"))}
