"""100,000 bridged calls grow resident memory by less than 2 MB (tests/reliability_leaks.py).

Runs in a fresh interpreter so no other test's allocations move the figure.
BRIDGE_CFFI_LEAK_CALLS changes the number of calls.
"""

from __future__ import annotations

import json
import os
import sys

from conftest import REPO, run_python

CALLS = int(os.environ.get("BRIDGE_CFFI_LEAK_CALLS", "100000"))
LIMIT = 2 * 1024 * 1024


def test_many_calls_do_not_grow_resident_memory(c_kernel_library: os.PathLike[str]) -> None:
    script = REPO / "tests" / "reliability_leaks.py"
    code = (f"import sys; sys.argv = [{str(script)!r}, '--calls', '{CALLS}', '--c-kernel', "
            f"{str(c_kernel_library)!r}]; import runpy; "
            f"runpy.run_path({str(script)!r}, run_name='__main__')")
    done = run_python(code, timeout=120 + CALLS / 1000)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps(report), file=sys.stderr)
    assert report["calls"] == CALLS
    assert report["rss_growth"] < LIMIT, f"RSS grew by {report['rss_growth']} bytes"
    assert report["all_released"] and report["dlpack_balanced"]
    # kernels_alive counts tvm-ffi kernels: the three TVM wrappers the script still holds.
    assert report["kernels_alive"] == 3
