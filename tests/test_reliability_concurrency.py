"""Several Python threads push bridged operations at once: results stay exact, nothing deadlocks.

Runs tests/reliability_concurrency.py in a fresh interpreter per engine type under a timeout
(a deadlock fails the test). BRIDGE_CFFI_CONCURRENCY_OPS (operations per thread, default 1500)
and BRIDGE_CFFI_CONCURRENCY_THREADS (default 4) make longer runs.
"""

from __future__ import annotations

import json
import os

import pytest

from conftest import REPO, run_python

OPS = int(os.environ.get("BRIDGE_CFFI_CONCURRENCY_OPS", "1500"))
THREADS = int(os.environ.get("BRIDGE_CFFI_CONCURRENCY_THREADS", "4"))


@pytest.mark.parametrize("engine", ["ThreadedEnginePerDevice", "ThreadedEngine", "NaiveEngine"])
def test_threads_pushing_at_once_get_exact_results(engine: str) -> None:
    script = REPO / "tests" / "reliability_concurrency.py"
    code = (f"import sys; sys.argv = [{str(script)!r}, '--threads', '{THREADS}', '--ops', "
            f"'{OPS}']; import runpy; runpy.run_path({str(script)!r}, run_name='__main__')")
    done = run_python(code, env={"MXNET_ENGINE_TYPE": engine, "MXNET_CPU_WORKER_NTHREADS": "4"},
                      timeout=90 + OPS * THREADS / 200)
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["results"] == [
        {"ok": True, "checks": result["checks"]} for result in report["results"]
    ], report["results"]
    assert len(report["results"]) == THREADS
    assert report["shared_intact"], "a shared read-only input was written"
    assert report["pushed"] >= THREADS * OPS // 2
    assert report["all_released"] and report["dlpack_balanced"]
