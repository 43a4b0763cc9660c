"""The GPU path on a real GPU (issue 10): every scenario of gpu_scenarios.py under each engine.

Each engine type runs the scenarios in a fresh interpreter of its own (MXNET_ENGINE_TYPE is
read once, at start-up); each test asserts one scenario's outcome there. A slow kernel (0.3 s)
makes any read that does not wait for the GPU work visible, by its values and by the clock.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any, cast

import pytest

from conftest import REPO

HERE = Path(__file__).resolve().parent
ALL_ENGINES = ["ThreadedEnginePerDevice", "ThreadedEngine", "NaiveEngine"]
#: BRIDGE_CFFI_GPU_ENGINES=NaiveEngine (comma-separated) runs fewer: tools/gpu/run_all.sh runs
#: pytest once per engine, so each engine has its own summary line.
ENGINES = [
    engine for engine in os.environ.get("BRIDGE_CFFI_GPU_ENGINES", ",".join(ALL_ENGINES)).split(",")
    if engine
]
SCENARIOS = [
    "self_test_confirmed",
    "seed_example",
    "dtypes",
    "slow_kernel_then_asnumpy",
    "slow_kernel_then_wait_to_read",
    "slow_kernel_then_waitall",
    "chain_of_bridged_ops",
    "chain_with_mxnet_copies",
    "many_calls_on_one_array",
    "mixed_devices_refused_before_push",
    "kernel_error_reaches_the_next_wait",
    "arrays_and_wrapper_dropped_right_after_the_call",
    "tvm_ffi_kernel_gets_the_engine_stream",
    "c_protocol_kernel_on_the_stream",
    "gpu_views",
    "gpu_refused_by_its_self_test_is_refused_before_push",
    "counters_balanced",
]
#: With two GPU workers per device the ordering scenarios matter most (two streams).
TWO_WORKER_SCENARIOS = [
    "self_test_confirmed",
    "slow_kernel_then_asnumpy",
    "chain_of_bridged_ops",
    "chain_with_mxnet_copies",
    "many_calls_on_one_array",
    "c_protocol_kernel_on_the_stream",
    "counters_balanced",
]


@cache
def run_scenarios(engine: str, workers: str = "", names: tuple[str, ...] = ()) -> dict[str, Any]:
    """Run gpu_scenarios.py in a fresh interpreter; its per-scenario results, or why none."""
    env = {"MXNET_ENGINE_TYPE": engine}
    if workers:
        env["MXNET_GPU_WORKER_NTHREADS"] = workers
    done = subprocess.run(
        [sys.executable, str(HERE / "gpu_scenarios.py"), *names],
        capture_output=True, text=True, timeout=600, cwd=REPO, env={**os.environ, **env},
        check=False,
    )
    for line in done.stdout.splitlines():
        if line.startswith("RESULTS "):
            return cast("dict[str, Any]", json.loads(line[len("RESULTS "):]))
    return {"__crash__": f"rc {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"}


def _assert_scenario(results: dict[str, Any], name: str) -> None:
    assert "__crash__" not in results, results.get("__crash__")
    assert name in results, f"{name} did not run"
    assert results[name]["ok"], results[name]["detail"]


@pytest.mark.parametrize("name", SCENARIOS)
@pytest.mark.parametrize("engine", ENGINES)
def test_gpu_scenario(engine: str, name: str) -> None:
    _assert_scenario(run_scenarios(engine), name)


@pytest.mark.parametrize("name", TWO_WORKER_SCENARIOS)
def test_gpu_scenario_with_two_gpu_workers(name: str) -> None:
    _assert_scenario(
        run_scenarios("ThreadedEnginePerDevice", "2", tuple(TWO_WORKER_SCENARIOS)), name
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_a_gpu_fault_fails_the_op_at_the_next_wait_with_the_cuda_error(engine: str) -> None:
    # An illegal address leaves the CUDA context broken: a process of its own per engine.
    _assert_scenario(run_scenarios(engine, "", ("sticky_fault",)), "sticky_fault")


def test_probe_reports_the_gpu_self_test_confirmed() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "abi_checks", "--json"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
        check=False,
    )
    report = json.loads(done.stdout)
    gpu = report["dynamic"]["gpu"]
    assert gpu["status"] == "confirmed", gpu
    assert report["dynamic"]["mxnet_features"].get("CUDA") is True
    statuses = {v["name"]: v["status"] for v in report["verdicts"]}
    assert statuses["bridge-async"] == "ok", report["verdicts"]


def test_gpu_benchmark_quick_run_prints_its_table() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu", "--quick"],
        capture_output=True, text=True, timeout=600, cwd=REPO,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "n=20 float32 on gpu(0)" in done.stdout, done.stdout
    assert "2^26 float32" in done.stdout, done.stdout
