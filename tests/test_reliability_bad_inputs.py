"""Bad-input fuzzing with hypothesis (tests/reliability_bad_inputs.py), in a subprocess under a
timeout, with a faulthandler watchdog per example: every random argument list gives the right
result, is refused before anything is pushed, or (for what only the kernel can check: a C
kernel's dtypes and sizes) fails on the engine with the operation's name; never a crash or a
hang.

BRIDGE_CFFI_HYPOTHESIS_EXAMPLES sets the examples per function (default 300; three functions).
"""

from __future__ import annotations

import json
import os
import sys

from conftest import REPO, run_python

EXAMPLES = int(os.environ.get("BRIDGE_CFFI_HYPOTHESIS_EXAMPLES", "300"))


def test_random_argument_lists_never_crash_hang_or_compute_wrongly(
    c_kernel_library: os.PathLike[str],
) -> None:
    script = REPO / "tests" / "reliability_bad_inputs.py"
    code = (f"import sys; sys.argv = [{str(script)!r}, '--c-kernel', {str(c_kernel_library)!r}, "
            f"'--examples', '{EXAMPLES}']; import runpy; "
            f"runpy.run_path({str(script)!r}, run_name='__main__')")
    done = run_python(code, timeout=120 + EXAMPLES / 5)
    # A crash shows as a signal exit code, a hang as subprocess.TimeoutExpired, a violated
    # property as hypothesis's falsifying example on stderr.
    assert done.returncode == 0, done.stderr[-6000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps(report), file=sys.stderr)
    assert report["examples"] >= 3 * EXAMPLES * 0.9  # hypothesis may stop a little early
    outcomes = report["outcomes"]
    for function in ("add_into", "scaled_add", "c_scale"):
        for outcome in ("ok", "refused"):
            assert outcomes.get(f"{function}:{outcome}", 0) > 0, (function, outcome)
    # A C kernel checks its own arguments on the engine; for functions TVM compiled, the bridge
    # reads their embedded signature and refuses at the call all that the kernel would refuse.
    assert outcomes.get("c_scale:kernel_error", 0) > 0
    assert outcomes.get("add_into:kernel_error", 0) == 0, outcomes
    assert outcomes.get("scaled_add:kernel_error", 0) == 0, outcomes
