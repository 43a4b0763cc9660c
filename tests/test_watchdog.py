"""The suite's deadlock watchdog (pytest-timeout, configured in pyproject.toml) does interrupt a
test blocked in MXNet's C wait on an operation that never runs, the shape a missed aliasing
deduplication takes, instead of hanging the run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import REPO

#: A test whose kernel never returns: the Python kernel blocks on the engine's worker thread, so
#: wait_to_read() blocks inside MXNDArrayWaitToRead (C, GIL released) for ever.
HUNG_TEST = '''
import threading

import mxnet as mx
import pytest

import bridge_cffi

NEVER = threading.Event()


def never_returns(source, target):
    NEVER.wait()


@pytest.mark.timeout(3)  # no method given: the project's configured one
def test_waits_for_an_operation_that_never_runs():
    f = bridge_cffi.to_mxnet_func(never_returns, const_loc=[0])
    out = mx.nd.zeros(4)
    f(mx.nd.ones(4), out)
    out.wait_to_read()
'''


def test_a_test_blocked_in_an_engine_wait_is_ended_by_the_watchdog(tmp_path: Path) -> None:
    test_file = tmp_path / "test_hung.py"
    test_file.write_text(HUNG_TEST)
    started = time.monotonic()
    # -c: the project's pytest configuration (timeout_method among it), for a file outside
    # tests/. The subprocess limit is the outer guard: reaching it would mean no watchdog.
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c",
         str(REPO / "pyproject.toml"), "--rootdir", str(tmp_path), str(test_file)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "MXNET_ENGINE_TYPE": "ThreadedEnginePerDevice"},
        check=False,
    )
    elapsed = time.monotonic() - started
    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-3000:]
    assert "Timeout" in output, output[-3000:]
    # The dumped stacks show where it hung: the main thread in the engine wait.
    assert "wait_to_read" in output, output[-3000:]
    assert elapsed < 100, elapsed
