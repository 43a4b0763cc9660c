"""`make asan` in CI, on a subset: the extension built with ASan and UBSan into a copy of the
tree, a planted overflow caught (the sanitizer is live), then seed, aliasing, failure-injection
and hazard-fuzz tests run clean with the ASan runtime preloaded. The full command (all core
tests, 2,000 fuzz operations per configuration) is documented in docs/reliability.md.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO

SUBSET = ("tests/test_bridge_seed.py tests/test_bridge_aliasing.py "
          "tests/test_reliability_failures.py tests/test_reliability_fuzz.py")


def test_core_tests_run_clean_under_asan_and_ubsan(tmp_path: Path) -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        ["make", "-s", "asan", f"ASAN_DIR={tmp_path}", f"ASAN_TESTS={SUBSET}", "ASAN_FUZZ_OPS=500"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "AddressSanitizer" not in done.stdout, output[-6000:]
    assert "runtime error:" not in output, output[-6000:]  # UBSan's report
    assert " passed" in done.stdout and " failed" not in done.stdout, done.stdout[-3000:]
