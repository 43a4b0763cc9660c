"""Every MXNet engine type gives the same results, one subprocess per type."""

from __future__ import annotations

import json
from typing import Any, cast

import numpy as np
import pytest

from conftest import REPO, run_python

ENGINES = ["ThreadedEnginePerDevice", "ThreadedEngine", "NaiveEngine"]

#: Per engine, the JSON result of each scenario (tests/engine_scenarios.py).
Results = dict[str, dict[str, Any]]


def _scenarios(engine: str) -> dict[str, Any]:
    done = run_python(
        f"import runpy; runpy.run_path({str(REPO / 'tests' / 'engine_scenarios.py')!r}, "
        "run_name='__main__')",
        env={"MXNET_ENGINE_TYPE": engine},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return cast("dict[str, Any]", json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def results() -> Results:
    return {engine: _scenarios(engine) for engine in ENGINES}


@pytest.mark.parametrize("engine", ENGINES)
def test_engine_gives_numpy_results(results: Results, engine: str) -> None:
    got = results[engine]
    np.testing.assert_allclose(got["seed"], (np.arange(16) + 1) * 10.0)
    w = np.arange(30, dtype="float32") * 2
    w[20:30] = w[0:10] + w[10:20]
    np.testing.assert_array_equal(got["aliasing"], w)
    chain = np.ones(8)
    for step in range(5):
        chain = chain * 2.0
        chain = (chain + chain) * (step + 1)
    np.testing.assert_allclose(got["chain"], chain)


@pytest.mark.parametrize("engine", ENGINES)
def test_engine_error_reaches_python_with_its_message(results: Results, engine: str) -> None:
    got = results[engine]
    assert got["error_message"] is True
    # NaiveEngine runs the operation inside the push, so the call itself raises.
    assert got["error_raised_at"] == ("call" if engine == "NaiveEngine" else "wait")
    assert got["after_error"] == [0.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize("engine", ENGINES)
def test_engine_releases_every_dlpack_tensor_and_operation(results: Results, engine: str) -> None:
    assert results[engine]["all_released"] is True
    assert results[engine]["dlpack_balanced"] is True
    assert results[engine]["ops_balanced"] is True


def test_all_engines_agree(results: Results) -> None:
    first = results[ENGINES[0]]
    for engine in ENGINES[1:]:
        assert results[engine] == first | {"error_raised_at": results[engine]["error_raised_at"]}
