"""The benchmark runs and prints its table; its figures are not asserted (shared, noisy host)."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import REPO


def test_benchmark_quick_run_prints_every_target() -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--quick"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for label in ("n=20: bridge / native elemwise_add", "n=20: bridge / C floor",
                  "2^22: bridge / direct TVM", "2^22: push / kernel run time",
                  "two threads / one thread throughput",
                  "2^20: staging / one memcpy of the view",
                  "2^22: staging / one memcpy of the view",
                  "op(x, y) / f(x, y, z) at n=20",
                  "hybridized block, batch 1: bridged / native",
                  "hybridized block, batch 256: bridged / native"):
        assert re.search(re.escape(label) + r"\s+\d+\.\d+\s+target", out), label
    assert "(e) training example" in out
    assert re.search(r"\(h\) register_op \((extension_library|custom_op) route\)", out)
    assert re.search(r"batch 256\s+native\s+\d+\.\d+\s+bridged\s+\d+\.\d+", out)
    assert re.search(r"\(g\) dist_sync job, 2 workers.*bridged update \d+\.\d+\s+MXNet Adam "
                     r"update \d+\.\d+", out)
    assert "cores busy" in out
    assert re.search(r"n=20\s+aligned\s+\d+\.\d+\s+misaligned \(staged\)\s+\d+\.\d+", out)
    for path in ("bridge", "bridge_c_entry", "c_floor", "elemwise_add", "native_two_ops", "sync_dlpack", "direct_tvm"):
        assert re.search(rf"^\s+{path}\s+\d+\.\d+", out, re.M), path


def test_gpu_benchmark_without_a_gpu_says_why_and_exits_0() -> None:
    from bridge_cffi.selftests import gpu_absent_reason

    absent = gpu_absent_reason()
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu", "--quick"], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    if absent is None:  # a GPU machine: tests/gpu checks the table itself
        assert "targets (ratios from this run)" in done.stdout
    else:
        assert done.stdout.strip() == f"GPU benchmark skipped: no GPU here: {absent}"
