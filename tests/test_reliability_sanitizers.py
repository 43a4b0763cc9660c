"""`make asan` in CI, on a subset: the extension built with ASan and UBSan into a copy of the
tree, a planted overflow caught (the sanitizer is live), then seed, aliasing, failure-injection
and hazard-fuzz tests run clean with the ASan runtime preloaded. The full command (all core
tests, 2,000 fuzz operations per configuration) is documented in docs/reliability.md.

Where the reports go: ASan and UBSan write to stderr, and a child interpreter's stderr is usually
captured by the test that started it, so a report from a child whose test still passed would be
seen nowhere. `make asan` therefore sets the sanitizers' `log_path` to `<ASAN_DIR>/reports/`:
every process of the run, pytest or child, writes its report there. The canary runs with the
same settings and its report must land there (appended to canary.log), which shows, in every
run, that the place this test checks does receive reports.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO

SUBSET = ("tests/test_bridge_seed.py tests/test_bridge_aliasing.py "
          "tests/test_reliability_failures.py tests/test_reliability_fuzz.py")

#: What the sanitizers print at the head of a report (ASan, LeakSanitizer, UBSan).
REPORT_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def sanitizer_problems(asan_dir: Path, done: subprocess.CompletedProcess[str]) -> list[str]:
    """Why a `make asan` run is not clean (empty when it is), from its output and report files."""
    problems: list[str] = []
    output = done.stdout + done.stderr
    if done.returncode != 0:
        problems.append(f"make asan exited {done.returncode}")
    # The report files are the complete record; stdout and stderr are checked as well for a
    # process that ran without the settings (a test that clears its child's environment).
    problems.extend(f"a sanitizer report ({marker!r}) in make's output"
                    for marker in REPORT_MARKERS if marker in output)
    reports = sorted((asan_dir / "reports").glob("report.*"))
    problems.extend(f"sanitizer report {report.name}: {report.read_text()[:3000]}"
                    for report in reports)
    canary = asan_dir / "canary.log"
    if not canary.is_file() or "AddressSanitizer: heap-buffer-overflow" not in canary.read_text():
        problems.append("the canary's report did not reach the reports directory")
    # pytest -q ends with e.g. "41 passed, 1 xfailed in 80.00s"; anything failed or erroring,
    # or no test at all, is a problem.
    summary = done.stdout.strip().splitlines()[-1:] or [""]
    if not re.search(r"\b\d+ passed\b", summary[0]) or re.search(r"\b(failed|errors?)\b",
                                                                  summary[0]):
        problems.append(f"pytest summary: {summary[0]!r}")
    return problems


def test_core_tests_run_clean_under_asan_and_ubsan(tmp_path: Path) -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        ["make", "-s", "asan", f"ASAN_DIR={tmp_path}", f"ASAN_TESTS={SUBSET}", "ASAN_FUZZ_OPS=500"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
        check=False,
    )
    assert sanitizer_problems(tmp_path, done) == [], (done.stdout + done.stderr)[-6000:]


def _clean_run(asan_dir: Path) -> subprocess.CompletedProcess[str]:
    """What a clean `make asan` leaves in ``asan_dir``: the canary's report and no other."""
    (asan_dir / "reports").mkdir(parents=True)
    (asan_dir / "canary.log").write_text(
        "extension: /tree/bridge_cffi/_native.so\n"
        "==7==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x6\n"
    )
    return subprocess.CompletedProcess(["make"], 0, "....\n12 passed, 1 xfailed in 9.00s\n", "")


def test_the_clean_check_fails_on_each_kind_of_evidence(tmp_path: Path) -> None:
    # The real run cannot be made to fail cheaply in CI, so its check is shown failing here on
    # each kind of evidence, one at a time (each run's canary shows reports reach the files).
    assert sanitizer_problems(tmp_path / "clean", _clean_run(tmp_path / "clean")) == []

    done = _clean_run(tmp_path / "child")
    (tmp_path / "child" / "reports" / "report.4242").write_text(
        "==4242==ERROR: AddressSanitizer: heap-use-after-free\n")
    assert any("report.4242" in p for p in sanitizer_problems(tmp_path / "child", done))

    for stream in ("stdout", "stderr"):
        done = _clean_run(tmp_path / stream)
        setattr(done, stream, "bridge.c:12:3: runtime error: signed integer overflow\n"
                + getattr(done, stream))
        assert any("runtime error" in p for p in sanitizer_problems(tmp_path / stream, done))

    done = _clean_run(tmp_path / "canary")
    (tmp_path / "canary" / "canary.log").write_text("extension: /tree/bridge_cffi/_native.so\n")
    assert any("canary" in p for p in sanitizer_problems(tmp_path / "canary", done))

    done = _clean_run(tmp_path / "exit")
    done.returncode = 2
    assert any("exited 2" in p for p in sanitizer_problems(tmp_path / "exit", done))

    for n, summary in enumerate(("1 failed, 11 passed in 9.00s", "11 passed, 1 error in 9.00s",
                                 "no tests ran in 0.01s")):
        done = _clean_run(tmp_path / f"summary{n}")
        done.stdout = f"....\n{summary}\n"
        assert any("pytest summary" in p for p in sanitizer_problems(tmp_path / f"summary{n}",
                                                                     done)), summary
