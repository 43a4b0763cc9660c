"""Hazard fuzzing: random bridged and native operations on views of a pool of arrays match a
sequential numpy reference under every engine type and worker-thread count.

Each configuration runs tests/reliability_fuzz.py in a fresh interpreter (the engine type and
MXNET_CPU_WORKER_NTHREADS are read when MXNet starts). CI runs BRIDGE_CFFI_FUZZ_OPS=4000
operations per configuration by default (about 2,600 of them bridged); set it higher for a
longer run, e.g. BRIDGE_CFFI_FUZZ_OPS=50000, and BRIDGE_CFFI_FUZZ_SEED to move the seeds.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, cast

import pytest

from conftest import REPO, run_python

ENGINES = ["ThreadedEnginePerDevice", "ThreadedEngine", "NaiveEngine"]
THREADS = ["1", "4"]
OPS = int(os.environ.get("BRIDGE_CFFI_FUZZ_OPS", "4000"))
SEED = int(os.environ.get("BRIDGE_CFFI_FUZZ_SEED", "0"))
KERNELS = {"add_into", "scaled_add", "add_scalar", "scale_2d", "sum_diff", "axpy", "c_scale"}


def run_fuzzer(engine: str, threads: str, seed: int, ops: int, c_kernel: str,
               extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one fuzz configuration in a subprocess; return its JSON report."""
    script = REPO / "tests" / "reliability_fuzz.py"
    code = (f"import sys; sys.argv = [{str(script)!r}, '--seed', '{seed}', '--ops', '{ops}', "
            f"'--c-kernel', {c_kernel!r}]; import runpy; "
            f"runpy.run_path({str(script)!r}, run_name='__main__')")
    env = {"MXNET_ENGINE_TYPE": engine, "MXNET_CPU_WORKER_NTHREADS": threads}
    env.update(extra_env or {})
    # Generous watchdog: a hang (a missed deduplication deadlocks the engine) fails the test.
    done = run_python(code, env=env, timeout=120 + ops / 100)
    assert done.returncode == 0, done.stderr[-4000:]
    return cast("dict[str, Any]", json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("engine", ENGINES)
def test_random_operations_match_the_numpy_reference(engine: str, threads: str,
                                                     c_kernel_library: os.PathLike[str]) -> None:
    seed = SEED + ENGINES.index(engine) * 10 + int(threads)
    report = run_fuzzer(engine, threads, seed, OPS, str(c_kernel_library))
    summary = {k: report[k] for k in ("engine", "cpu_worker_nthreads", "seed", "ops", "bridged",
                                      "native", "aliased_calls", "mismatches", "seconds")}
    print(json.dumps(summary), file=sys.stderr)
    assert report["mismatches"] == 0, report["details"]
    assert report["ops"] == OPS
    assert report["bridged"] >= OPS // 2
    assert set(report["per_kernel"]) == KERNELS
    # The hazards the fuzzer exists for were actually generated.
    assert report["aliased_calls"] >= OPS // 10
    assert report["identical_alias"] >= OPS // 20
    assert report["stalls"] > 0 and report["replaced"] > 0
    assert report["pushed"] == report["bridged"]
    assert report["all_released"] and report["dlpack_balanced"] and report["ops_balanced"]
